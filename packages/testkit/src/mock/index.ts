// The mock-platform kit: what every connector's `./mock` builds on.

export {
  applyChanges,
  changedRanges,
  createSeededDisk,
  type DiskChange,
  type SeededChangesOptions,
  type SeededDiskOptions,
  seededChanges,
  type WritableDisk,
  writeImageFile,
} from './disk-fixture.js';
export type { ActiveFault, Fault, FaultKind, FaultMatch, FaultRule } from './faults.js';
export type { MockHostRef, MockHostSpec, MockPlatform } from './mock-platform.js';
export {
  type MockRequest,
  type MockResponse,
  type MockServer,
  type MockServerOptions,
  type MockTimers,
  type RecordedCall,
  type RouteHandler,
  type RouteTable,
  startMockServer,
} from './mock-server.js';
export { SeededRandom, seededBytes } from './seeded-random.js';
export { type MockCertificate, mockCertificate } from './tls-certificate.js';
export {
  type Block,
  type ChangedExtentsOptions,
  DiskSnapshot,
  type DiskView,
  VirtualDisk,
  type VirtualDiskOptions,
} from './virtual-disk.js';
