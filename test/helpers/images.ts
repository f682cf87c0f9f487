import { placeholderImage, type PlaceholderRequest } from '../../src/mock-api/placeholder.js';

/** The fake API's placeholder image as one buffer. */
export function placeholderBytes(req: PlaceholderRequest): Buffer {
  return Buffer.concat(placeholderImage(req).parts);
}
