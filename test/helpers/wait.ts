export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Truthy<T> = Exclude<T, null | undefined | false | 0 | ''>;

/** Polls `fn` until it returns something truthy (and returns that), or fails naming `what`. */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000): Promise<Truthy<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as Truthy<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
