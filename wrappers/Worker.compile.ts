import { CompilerConfig } from '@ton/blueprint';

export const compile: CompilerConfig = {
    lang: 'tolk',
    entrypoint: 'contracts/worker.tolk',
    withStackComments: true,
    withSrcLineComments: true,
};
