/**
 * Findings that hold for a while: "this folder is real" is checked once per `ms` rather than before
 * each of thousands of writes and reads into it, and rechecked after, so a folder swapped for a link
 * is seen within `ms`. Bounded to `max` entries (the oldest go first). A clock going back voids them.
 */
export function recentFindings(ms: number, max: number) {
  const at = new Map<string, number>();
  return {
    has(key: string): boolean {
      const t = at.get(key);
      const now = Date.now();
      return t !== undefined && now - t < ms && now >= t;
    },
    add(key: string): void {
      at.delete(key);
      at.set(key, Date.now());
      if (at.size > max) at.delete(at.keys().next().value!);
    },
    /** Forgets every finding whose key `drop` picks. */
    forget(drop: (key: string) => boolean): void {
      for (const k of [...at.keys()]) if (drop(k)) at.delete(k);
    },
  };
}
