import { localdisk } from '@syncproxy/connector-localdisk';
import { createLocalDiskPlatform } from '@syncproxy/connector-localdisk/mock';
import { runConnectorContract } from '@syncproxy/testkit/vitest';

runConnectorContract(localdisk, { platform: () => createLocalDiskPlatform() });
