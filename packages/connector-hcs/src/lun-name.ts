/**
 * The LUN name HCS (through its OpenStack-based Huawei volume driver) gives
 * the LUN of a volume: the volume UUID's 16 bytes, URL-safe base64 without
 * padding (22 characters, within Dorado's 31). Used when a volume names no
 * WWN. UNCONFIRMED for HCS 8.0.2 itself: it is the driver's `encode_name`.
 */
export function lunNameOf(volumeId: string): string {
  const hex = volumeId.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return volumeId.slice(0, 31);
  return Buffer.from(hex, 'hex').toString('base64url');
}
