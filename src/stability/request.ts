/** Request bodies for the two API families: v2beta multipart forms, and v1 JSON as the original one-image script sent it. */
import { FormData } from 'undici';
import { MODELS } from '../models.js';
import type { GenerateRequest } from './types.js';

/**
 * v2beta multipart form. Sent as FormData so undici writes the boundary itself
 * (the API requires multipart even without files).
 */
export function buildV2Form(req: GenerateRequest): FormData {
  const info = MODELS[req.model];
  const p = req.params;
  const form = new FormData();
  form.set('prompt', req.prompt);
  if (req.negative_prompt) form.set('negative_prompt', req.negative_prompt);
  form.set('seed', String(req.seed));
  if (p.aspect_ratio) form.set('aspect_ratio', p.aspect_ratio);
  if (p.style_preset) form.set('style_preset', p.style_preset);
  form.set('output_format', p.output_format);
  if (info.sd3Model) {
    form.set('model', info.sd3Model);
    form.set('mode', 'text-to-image');
    if (p.cfg_scale !== undefined) form.set('cfg_scale', String(p.cfg_scale));
  }
  return form;
}

export interface V1Body {
  text_prompts: Array<{ text: string; weight: number }>;
  cfg_scale: number;
  height: number;
  width: number;
  samples: 1;
  steps: number;
  seed: number;
  style_preset?: string;
}

/** v1 JSON body: the original script's request, plus seed, negative prompt and style. */
export function buildV1Body(req: GenerateRequest): V1Body {
  const d = MODELS[req.model].defaults;
  const p = req.params;
  const text_prompts = [{ text: req.prompt, weight: 1 }];
  if (req.negative_prompt) text_prompts.push({ text: req.negative_prompt, weight: -1 });
  const body: V1Body = {
    text_prompts,
    cfg_scale: p.cfg_scale ?? d.cfg_scale ?? 7,
    height: p.height ?? d.height ?? 1024,
    width: p.width ?? d.width ?? 1024,
    samples: 1,
    steps: p.steps ?? d.steps ?? 30,
    seed: req.seed,
  };
  if (p.style_preset) body.style_preset = p.style_preset;
  return body;
}
