/** Error bodies in the real API's two shapes (v1 `{id, name, message}`, v2beta `{id, name, errors}`) and its known messages. */
import { randomBytes } from 'node:crypto';

export type Family = 'v1' | 'v2';

export interface ErrorReply {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** v1: {id, name, message}; v2beta: {id, name, errors[]}. The id is 32 hex, as the API's. */
export function errorReply(family: Family, status: number, name: string, message: string): ErrorReply {
  const id = randomBytes(16).toString('hex');
  return { status, body: family === 'v1' ? { id, name, message } : { id, name, errors: [message] } };
}

/** The same reply with an `id` of our choosing (the real API's 429 uses its name as its id). */
export function withId(reply: ErrorReply, id: string): ErrorReply {
  return { ...reply, body: { ...reply.body, id } };
}

export const MSG = {
  serverError: 'An unexpected server error occurred, please try again.',
  missingAuth: 'missing authorization header',
  badKey: 'API key missing or invalid',
  paymentV2:
    'You lack sufficient credits to make this request. Please purchase more credits at https://platform.stability.ai/account/credits and try again.',
  paymentV1: 'Your organization does not have enough balance to request this action.',
  moderationV2:
    'Your request was flagged by our content moderation system, as a result your request was denied and you were not charged.',
  moderationV1: 'One or more prompts contains filtered words.',
  tooLarge: 'payloads cannot be larger than 10MiB',
  rateLimit: (count: number, windowMs: number, lockoutMs: number): string =>
    `You have exceeded the rate limit of ${count} requests within a ${windowMs / 1000} second period, ` +
    `and have been timed out for ${lockoutMs / 1000} seconds.`,
  engineNotFound: (engine: string): string => `The specified engine (ID ${engine}) was not found.`,
};
