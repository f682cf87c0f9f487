import type { Command } from 'commander';
import { loadConfig, settingsOf, type Config } from '../../config.js';
import { checkExportOptions, exportBatch, type ExportSummary } from '../../ops/export.js';
import { batchDir } from '../../output/paths.js';
import { UsageError } from '../../errors.js';
import { common, withSettings } from '../options.js';

export function exportCommand(program: Command): void {
  const cmd = program
    .command('export')
    .description(
      'export a batch as a dataset: imagefolder (Hugging Face), webdataset (tar shards) or captions (kohya)',
    );
  withSettings(common(cmd), ['batch', 'exportFormat', 'exportTo', 'includeFiltered', 'shardSize', 'json']).action(
    async (o: Record<string, unknown>) => {
      const config = loadConfig(o);
      const get = settingsOf(o);
      const opts = checkExportOptions({
        batch: get('batch'),
        format: get('exportFormat'),
        to: get('exportTo'),
        includeFiltered: get('includeFiltered'),
        shardSize: get('shardSize'),
      });
      const summary = await exportBatch(batchFolder(config, opts.batch), opts);
      process.stdout.write(get('json') ? `${JSON.stringify(summary)}\n` : `${formatExport(summary)}\n`);
    },
  );
}

/** Where the batch lives for this configuration (a mock batch and a real one of the same name differ). */
function batchFolder(config: Config, batch: string): string {
  if (config.s3) {
    throw new UsageError(
      `export reads a batch folder; copy the batch from s3://${config.s3.bucket}/${config.s3.prefix} to a folder first ` +
        '(for example with `aws s3 sync`) and pass that folder as --out',
    );
  }
  return batchDir(config.out, { api: config.api.identity, batch });
}

function formatExport(s: ExportSummary): string {
  const out = [s.leftOut.filtered && `${s.leftOut.filtered} filtered`, s.leftOut.failed && `${s.leftOut.failed} failed`]
    .concat(s.leftOut.missing ? [`${s.leftOut.missing} with the image missing`] : [])
    .filter(Boolean);
  return (
    `exported ${s.exported} images of batch ${s.batch} as ${s.format} to ${s.to}` +
    (out.length > 0 ? ` (left out: ${out.join(', ')})` : '') +
    (s.format === 'webdataset'
      ? `\n${s.files.length} shards`
      : `\nimages: ${s.linked} hard-linked, ${s.copied} copied; ${s.files.length} files`)
  );
}
