import { CompilerConfig } from '@ton/blueprint';

export const compile: CompilerConfig = {
    lang: 'tolk',
    entrypoint: 'contracts/escrow.tolk',
    withStackComments: true,
    withSrcLineComments: true,
};
