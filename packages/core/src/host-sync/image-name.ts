import { createHash } from 'node:crypto';

/** Longest image file name kept readable; longer ids are cut and made unique by a hash of the whole id. */
const MAX_READABLE_NAME = 160;

/**
 * The file name of a disk's image in a target directory: injective, so two
 * disk ids never share an image. Characters outside `[A-Za-z0-9._-]` are
 * percent-escaped (UTF-8 bytes, `%` itself included), so `/d/a_b.img` and
 * `/d/a/b.img` stay apart; an id whose escaped form is too long for a file
 * name is cut and ends in `~` and 16 hex digits of its SHA-256 (`~` is
 * never produced by the escape, so a cut name never equals an uncut one).
 */
export function imageFileName(diskId: string): string {
  const escaped = Array.from(new TextEncoder().encode(diskId), (byte) => {
    const char = String.fromCharCode(byte);
    return /[A-Za-z0-9._-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
  if (escaped.length <= MAX_READABLE_NAME && escaped !== '' && escaped !== '.' && escaped !== '..') {
    return `${escaped}.raw`;
  }
  const hash = createHash('sha256').update(diskId).digest('hex').slice(0, 16);
  return `${escaped.slice(0, MAX_READABLE_NAME)}~${hash}.raw`;
}
