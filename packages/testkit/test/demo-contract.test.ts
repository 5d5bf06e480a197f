import { runConnectorContract } from '@syncproxy/testkit/vitest';
import { demoConnector, startDemoPlatform } from './fixtures/demo-platform.js';

// A correct HTTPS connector passes every step of the suite, as a third party's test file would run it.
runConnectorContract(demoConnector(), { platform: startDemoPlatform });
