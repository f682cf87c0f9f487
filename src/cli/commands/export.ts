import { Option, type Command } from 'commander';
import { loadConfig, type Config } from '../../config.js';
import { EXPORT_FORMATS, exportBatch, resolveExportOptions, type ExportSummary } from '../../ops/export.js';
import { batchDir } from '../../output/paths.js';
import { common } from '../options.js';

export function exportCommand(program: Command): void {
  const cmd = program
    .command('export')
    .description('export a batch as a dataset: imagefolder (Hugging Face), webdataset (tar shards) or captions (kohya)')
    // No commander defaults: resolveExportOptions fills them in, so every default lives in one place.
    .option('--batch <name>', 'the batch')
    .addOption(new Option('--format <format>', 'imagefolder, webdataset or captions').choices(EXPORT_FORMATS))
    .option('--to <dir>', 'the folder to export into (new, empty, or an earlier export of this batch)')
    .option('--include-filtered', 'also export filtered (blurred) images')
    .option('--shard-size <n>', 'samples per webdataset shard (default 1000)')
    .option('--json', 'print the summary as JSON');
  common(cmd).action(async (o: Record<string, unknown>) => {
    const config = loadConfig(o);
    const opts = resolveExportOptions(o);
    const summary = await exportBatch(batchFolder(config, opts.batch), opts);
    process.stdout.write(o.json ? `${JSON.stringify(summary)}\n` : `${formatExport(summary)}\n`);
  });
}

/** Where the batch lives for this configuration (a mock batch and a real one of the same name differ). */
function batchFolder(config: Config, batch: string): string {
  return batchDir(config.out, batch);
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
