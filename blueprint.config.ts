import { Config } from '@ton/blueprint';

// Blueprint finds the contracts through wrappers/*.compile.ts; nothing else to configure.
export const config: Config = {};
