import { CompilerConfig } from '@ton/blueprint';

export const compile: CompilerConfig = {
    lang: 'tolk',
    entrypoint: 'contracts/root.tolk',
    withStackComments: true,
    withSrcLineComments: true,
};
