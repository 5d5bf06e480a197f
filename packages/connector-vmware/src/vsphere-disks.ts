import { readCount } from './client.js';
import { child, list, text, type XmlNode, xsiType } from './soap/xml.js';

/** A `VirtualDisk` of `config.hardware.device`, with what CBT and VDDK need. */
export interface VsphereDisk {
  key: number;
  label: string;
  capacityBytes: number;
  /** `VirtualDiskFlatVer2BackingInfo`, `VirtualDiskRawDiskMappingVer1BackingInfo`... */
  backingType: string;
  fileName: string;
  /** `persistent`, `independent_persistent`, `independent_nonpersistent`... */
  diskMode: string;
  /** Only FlatVer2, SparseVer2, RawDiskMappingVer1 and RawDiskVer2 backings carry one (VDDK programming guide). */
  changeId: string | undefined;
  /** `physicalMode` or `virtualMode` for an RDM. */
  compatibilityMode: string | undefined;
  controllerKey: number | undefined;
  unitNumber: number | undefined;
}

/** The disks of a `config.hardware.device` value (an `ArrayOfVirtualDevice`), in device order. */
export function readDisks(devices: XmlNode | undefined): VsphereDisk[] {
  const out: VsphereDisk[] = [];
  for (const device of list(child(devices, 'VirtualDevice'))) {
    if (xsiType(device) !== 'VirtualDisk') continue;
    const backing = child(device, 'backing');
    const bytes = text(child(device, 'capacityInBytes'));
    const capacityBytes =
      bytes !== undefined && bytes !== ''
        ? readCount(child(device, 'capacityInBytes'), 'VirtualDisk.capacityInBytes')
        : readCount(child(device, 'capacityInKB'), 'VirtualDisk.capacityInKB') * 1024;
    const controller = text(child(device, 'controllerKey'));
    const unit = text(child(device, 'unitNumber'));
    out.push({
      key: readCount(child(device, 'key'), 'VirtualDisk.key'),
      label: text(child(child(device, 'deviceInfo'), 'label')) ?? '',
      capacityBytes,
      backingType: xsiType(backing) ?? 'unknown',
      fileName: text(child(backing, 'fileName')) ?? '',
      diskMode: text(child(backing, 'diskMode')) ?? 'persistent',
      changeId: text(child(backing, 'changeId')) || undefined,
      compatibilityMode: text(child(backing, 'compatibilityMode')) || undefined,
      controllerKey: controller ? Number(controller) : undefined,
      unitNumber: unit ? Number(unit) : undefined,
    });
  }
  return out;
}

/** Why a disk cannot be read through a snapshot, or undefined when it can. */
export function unreadableReason(disk: VsphereDisk): string | undefined {
  if (disk.diskMode.startsWith('independent')) {
    return `${disk.label || disk.key} is an independent disk (${disk.diskMode}): snapshots do not include it`;
  }
  if (
    disk.backingType === 'VirtualDiskRawDiskMappingVer1BackingInfo' &&
    disk.compatibilityMode === 'physicalMode'
  ) {
    return `${disk.label || disk.key} is a physical-mode RDM: it cannot be snapshotted`;
  }
  return undefined;
}

/** The snapshots in a `snapshot` (VirtualMachineSnapshotInfo) value: the tree, flattened. */
export function countSnapshots(info: XmlNode | undefined): number {
  let count = 0;
  const walk = (nodes: XmlNode[]): void => {
    for (const node of nodes) {
      count++;
      walk(list(child(node, 'childSnapshotList')));
    }
  };
  walk(list(child(info, 'rootSnapshotList')));
  return count;
}
