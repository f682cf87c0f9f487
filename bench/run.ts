/**
 * `npm run bench`: every benchmark in sequence (never in parallel: they would measure each other),
 * then bench/RESULTS.md is rewritten between its generated markers; the hand-written analysis
 * around them stays. BENCH_ONLY=rate-limit,overhead runs a subset (the other sections keep their
 * last figures, and their rows in the goals table). Sizes: see the BENCH_* variables in each file.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { fmt, machine, printResult, redisUrl, type BenchResult } from './lib.js';
import { ROOT } from '../test/helpers/cli.js';

const BENCHES: Record<string, () => Promise<{ run: () => Promise<BenchResult> }>> = {
  'rate-limit': () => import('./rate-limit.js'),
  overhead: () => import('./overhead.js'),
  enqueue: () => import('./enqueue.js'),
  memory: () => import('./memory.js'),
  original: () => import('./original.js'),
  hostile: () => import('./hostile.js'),
  'on-disk': () => import('./on-disk.js'),
  cluster: () => import('./cluster.js'),
  s3: () => import('./s3.js'),
  'auto-concurrency': () => import('./auto-concurrency.js'),
};

const FILE = join(ROOT, 'bench/RESULTS.md');
const mark = (name: string) => [`<!-- bench:${name} -->`, `<!-- /bench:${name} -->`] as const;

/** Replaces the section between a name's markers, or appends it before the analysis when it is new. */
function splice(doc: string, name: string, body: string): string {
  const [open, close] = mark(name);
  const block = `${open}\n${body.trim()}\n${close}`;
  const a = doc.indexOf(open);
  const b = doc.indexOf(close);
  if (a >= 0 && b > a) return doc.slice(0, a) + block + doc.slice(b + close.length);
  const at = doc.indexOf('<!-- analysis -->');
  return at >= 0 ? `${doc.slice(0, at)}${block}\n\n${doc.slice(at)}` : `${doc}\n${block}\n`;
}

/**
 * The goals table after this run: a benchmark that ran replaces its rows (in the order of BENCHES),
 * one that did not keeps the rows of its last run.
 */
function goalRows(doc: string, fresh: string[]): string[] {
  const [open, close] = mark('summary');
  const a = doc.indexOf(open);
  const b = doc.indexOf(close);
  const old =
    a >= 0 && b > a
      ? doc
          .slice(a, b)
          .split('\n')
          .filter((l) => l.startsWith('| ') && !l.startsWith('| benchmark |'))
      : [];
  const titleOf = (row: string) => row.split(' | ')[0]!.slice(2);
  const ran = new Set(fresh.map(titleOf));
  const rows = [...old.filter((r) => !ran.has(titleOf(r))), ...fresh];
  const order = (row: string) => Number(/^\| (\d+)\./.exec(row)?.[1] ?? 99);
  return rows
    .map((r, i) => ({ r, i }))
    .sort((x, y) => order(x.r) - order(y.r) || x.i - y.i)
    .map((x) => x.r);
}

const only = process.env.BENCH_ONLY?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const names = Object.keys(BENCHES).filter((n) => !only || only.includes(n));
const redis = new Redis(redisUrl());
const m = await machine(redis);
redis.disconnect();
process.stdout.write(
  `nightshift benchmarks: ${names.join(', ')}\n${m.cpus} CPUs (${m.cpuModel}), ${m.memGb} GB, node ${m.node}, redis ${m.redis}, load ${m.loadAvg}\n`,
);

const t0 = Date.now();
const results: BenchResult[] = [];
let failed = false;
for (const name of names) {
  const started = Date.now();
  process.stdout.write(`\n▶ ${name}\n`);
  try {
    const r = await (await BENCHES[name]!()).run();
    r.lines.push('', `_Ran ${new Date(started).toISOString()} in ${fmt.s(Date.now() - started)}._`);
    printResult(r);
    results.push(r);
  } catch (err) {
    failed = true;
    const msg = err instanceof Error ? err.message : String(err);
    process.stdout.write(`  FAILED: ${msg}\n`);
    results.push({ name, title: name, lines: [`**The benchmark failed:** ${msg.split('\n')[0]}`], goals: [] });
  }
}

let doc = existsSync(FILE) ? await readFile(FILE, 'utf8') : '# nightshift benchmark results\n\n<!-- analysis -->\n';
const os = await import('node:os');
const loadEnd = os
  .loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
// More runnable processes than cores at either end: something else shared the machine.
const busiest = Math.max(Number(m.loadAvg.split(' ')[0]), os.loadavg()[0]!);
const noise =
  busiest > m.cpus ? ' (more runnable processes than cores: other work shared the machine, expect noise)' : '';
doc = splice(
  doc,
  'machine',
  [
    '## Machine',
    '',
    `${m.cpus} CPUs (${m.cpuModel}), ${m.memGb} GB RAM, ${m.os}, Node ${m.node}, Redis ${m.redis} (local, 127.0.0.1).`,
    `Last run ${new Date(t0).toISOString()}: ${names.join(', ')} in ${fmt.s(Date.now() - t0)}; load average ${m.loadAvg} at the start, ${loadEnd} at the end${noise}.`,
  ].join('\n'),
);
const summary = results.flatMap((r) =>
  r.goals.map((g) => `| ${r.title} | ${g.what} | ${g.value} | ${g.goal} | ${g.pass ? 'met' : '**missed**'} |`),
);
if (summary.length > 0) {
  doc = splice(
    doc,
    'summary',
    [
      '## Goals',
      '',
      '| benchmark | figure | measured | goal | |',
      '|---|---|---|---|---|',
      ...goalRows(doc, summary),
    ].join('\n'),
  );
}
for (const r of results) doc = splice(doc, r.name, [`## ${r.title}`, '', ...r.lines].join('\n'));
await writeFile(FILE, doc);
process.stdout.write(`\nwrote ${FILE} (${fmt.s(Date.now() - t0)} in all)\n`);
process.exitCode = failed ? 1 : 0;
