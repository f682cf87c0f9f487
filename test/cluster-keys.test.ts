/**
 * The key layout on a Redis Cluster: every key of one queue (BullMQ's and ours) in one hash slot,
 * the state queues share in one slot of its own, and every key a Lua script touches passed in
 * KEYS. A key added later outside its tag, or built inside a script, fails here.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueueKeys } from 'bullmq';
import { describe, expect, it } from 'vitest';
import * as keys from '../src/redis/keys.js';
import { ROOT } from './helpers/cli.js';
import { keySlot } from './helpers/key-slot.js';

const PREFIX = '{nightshift}';
const REAL_API = 'https://api.stability.ai';

/** Every key each export of keys.ts spells, for one queue and one batch; the bool: queue's own or shared. */
function spelledKeys(queue: string, cluster: boolean): Record<string, { own: boolean; keys: string[] }> {
  const qp = keys.queuePrefix(PREFIX, queue, cluster);
  const ref = { api: REAL_API, batch: 'night-1' };
  const values = (o: Record<string, string>) => Object.values(o);
  return {
    bullKeys: {
      own: true,
      keys: [
        keys.bullKeys.job(qp, queue, 'j1'),
        ...(['completed', 'failed'] as const).map((s) => keys.bullKeys.finished(qp, queue, s)),
      ],
    },
    queueKeys: { own: true, keys: values(keys.queueKeys(qp, queue)) },
    queuePrefix: { own: true, keys: [qp] },
    batchIndexKey: { own: false, keys: [keys.batchIndexKey(PREFIX, 'mock'), keys.batchIndexKey(PREFIX, REAL_API)] },
    batchKeys: { own: false, keys: values(keys.batchKeys(PREFIX, ref)) },
    jobKeys: { own: false, keys: values(keys.jobKeys(PREFIX, ref, 'j1')) },
    limiterKeys: { own: false, keys: values(keys.limiterKeys(PREFIX, 'k1')) },
    breakerKeys: { own: false, keys: values(keys.breakerKeys(PREFIX, REAL_API, 'k1')) },
    apiTag: { own: false, keys: [] },
  };
}

/** BullMQ's own keys for the queue (wait, active, events, meta, the marker, …), as BullMQ spells them. */
function bullmqKeys(queue: string): string[] {
  return Object.values(new QueueKeys(keys.queuePrefix(PREFIX, queue, true)).getKeys(queue)).filter((k) => k !== '');
}

describe('cluster key layout', () => {
  it('computes slots the way Redis does', () => {
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('123456789')).toBe(12739);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
    expect(keySlot('{}x')).not.toBe(keySlot('x'));
  });

  it('covers every export of keys.ts (a new one must be added here)', () => {
    expect(Object.keys(keys).sort()).toEqual(Object.keys(spelledKeys('q', true)).sort());
  });

  it("puts every key of a queue in the queue's slot and the shared keys in one other slot", () => {
    for (const queue of ['nightshift', 'nightshift-mock', 'night-2']) {
      const own = keySlot(keys.queuePrefix(PREFIX, queue, true));
      const shared = keySlot(PREFIX);
      for (const [name, group] of Object.entries(spelledKeys(queue, true))) {
        for (const k of group.keys)
          expect({ name, k, slot: keySlot(k) }).toEqual({ name, k, slot: group.own ? own : shared });
      }
      for (const k of bullmqKeys(queue)) expect({ k, slot: keySlot(k) }).toEqual({ k, slot: own });
      expect(own).not.toBe(shared);
    }
  });

  it('spreads queues over the slots, and keeps one Redis on the layout it always had', () => {
    const slots = new Set(['a', 'b', 'c', 'd'].map((q) => keySlot(keys.queuePrefix(PREFIX, q, true))));
    expect(slots.size).toBe(4);
    expect(keys.queuePrefix(PREFIX, 'q', false)).toBe(PREFIX);
    expect(keys.queuePrefix('{ns-test}x', 'q', true)).toBe('{ns-test-q}x');
    for (const group of Object.values(spelledKeys('q', false)))
      for (const k of group.keys) expect(keySlot(k)).toBe(keySlot(PREFIX));
  });
});

const isKeyArg = (a: string) => /^KEYS\[\d+\]$/.test(a);

/** Shared Lua functions and the positions of their key parameters (named kSomething). */
function keyParameters(text: string): Map<string, Array<{ name: string; at: number }>> {
  const out = new Map<string, Array<{ name: string; at: number }>>();
  for (const m of text.matchAll(/local function (\w+)\(([^)]*)\)/g)) {
    const params = m[2]!.split(',').map((p, at) => ({ name: p.trim(), at }));
    const keyParams = params.filter((p) => /^k[A-Z]/.test(p.name));
    if (keyParams.length > 0) out.set(m[1]!, keyParams);
  }
  return out;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('Lua scripts', () => {
  it('touch only keys passed in KEYS (a key built inside a script could sit in another slot)', async () => {
    const files = [...(await sourceFiles(join(ROOT, 'src'))), ...(await sourceFiles(join(ROOT, 'jobs')))];
    const texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    const fragments = keyParameters(texts.join('\n'));
    const bad: string[] = [];
    let calls = 0;
    files.forEach((f, i) => {
      const text = texts[i]!;
      const where = f.slice(ROOT.length + 1);
      // Names bound to KEYS entries by `for i, key in ipairs(KEYS)`, and the key parameters of shared
      // Lua functions (named kSomething: every call must pass them a KEYS entry, checked below).
      const bound = new Set([...text.matchAll(/for\s+\w+\s*,\s*(\w+)\s+in\s+ipairs\(KEYS\)/g)].map((m) => m[1]!));
      for (const params of fragments.values()) for (const p of params) bound.add(p.name);
      for (const m of text.matchAll(/redis\.(?:p?call)\(\s*'(\w+)'\s*(?:,\s*([^,)]+))?/g)) {
        calls++;
        const [, cmd, first] = m;
        if (cmd === 'TIME') continue;
        const arg = (first ?? '').trim();
        if (!isKeyArg(arg) && !bound.has(arg)) bad.push(`${where}: ${cmd} ${arg}`);
      }
      for (const [name, params] of fragments) {
        for (const call of text.matchAll(new RegExp(`(?<!function )\\b${name}\\(([^)]*)\\)`, 'g'))) {
          const line = text.slice(text.lastIndexOf('\n', call.index) + 1, call.index).trim();
          if (line.startsWith('*') || line.startsWith('--') || line.startsWith('//')) continue; // a comment
          const args = call[1]!.split(',').map((a) => a.trim());
          // A key parameter handed on by another shared function is checked where that one is called.
          for (const p of params) {
            const arg = args[p.at] ?? '';
            if (!isKeyArg(arg) && !bound.has(arg)) bad.push(`${where}: ${name} ${p.name}=${args[p.at]}`);
          }
        }
      }
    });
    expect(calls).toBeGreaterThan(30);
    expect(fragments.size).toBeGreaterThan(0);
    expect(bad).toEqual([]);
  });
});
