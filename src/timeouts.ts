/**
 * Waits for `p` at most `ms`, then settles with `fallback` instead. A rejection of `p` before the
 * deadline passes through. The timer is cleared as soon as either side wins, so a settled wait holds
 * neither the event loop nor a pending timer; while it runs it keeps the process alive, because the
 * caller is still waiting for an answer.
 */
export async function within<T, F>(p: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `p` at most `ms`, ignoring how it ends: closing a pool must not hold the exit. */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  await within(
    p.then(
      () => {},
      () => {},
    ),
    ms,
    undefined,
  );
}
