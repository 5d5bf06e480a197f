import { localdisk } from '@syncproxy/connector-localdisk';
import { createLocalDiskPlatform } from '@syncproxy/connector-localdisk/mock';
import { runConnectorContract } from '@syncproxy/testkit';

runConnectorContract(localdisk, { platform: () => createLocalDiskPlatform() });
