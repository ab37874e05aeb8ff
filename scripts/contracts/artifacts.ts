// Compiles contracts/{root,worker,escrow}.tolk with the pinned Tolk compiler and writes
// contracts/compiled/<name>.json = {"codeBoc64", "codeHashHex"}: the artefact the Rust sdk embeds.
// tests/compiled.spec.ts fails when the committed files differ from a fresh compile.
import * as fs from 'fs';
import * as path from 'path';
import { runTolkCompiler } from '@ton/tolk-js';

export const CONTRACTS = ['root', 'worker', 'escrow'] as const;
export type ContractName = (typeof CONTRACTS)[number];

const REPO = path.resolve(__dirname, '..', '..');
export const COMPILED_DIR = path.join(REPO, 'contracts', 'compiled');

export interface Compiled {
    codeBoc64: string;
    codeHashHex: string;
}

export async function compileContract(name: ContractName): Promise<Compiled> {
    const result = await runTolkCompiler({
        entrypointFileName: `contracts/${name}.tolk`,
        fsReadCallback: (p) => fs.readFileSync(path.join(REPO, p), 'utf-8'),
    });
    if (result.status !== 'ok') throw new Error(`${name}: ${result.message}`);
    return { codeBoc64: result.codeBoc64, codeHashHex: result.codeHashHex };
}

export function compiledJson(c: Compiled): string {
    return JSON.stringify({ codeBoc64: c.codeBoc64, codeHashHex: c.codeHashHex }, null, 2) + '\n';
}

// Protocol v2 (contracts/v2/*.tolk → contracts/v2/compiled/<name>.json, same format), written by
// `scripts/contracts/compile-v2`; tests/v2/compiled.spec.ts checks them. v1 output is unchanged.
export const COMPILED_DIR_V2 = path.join(REPO, 'contracts', 'v2', 'compiled');

export async function compileContractV2(name: ContractName): Promise<Compiled> {
    const result = await runTolkCompiler({
        entrypointFileName: `contracts/v2/${name}.tolk`,
        fsReadCallback: (p) => fs.readFileSync(path.join(REPO, p), 'utf-8'),
    });
    if (result.status !== 'ok') throw new Error(`v2 ${name}: ${result.message}`);
    return { codeBoc64: result.codeBoc64, codeHashHex: result.codeHashHex };
}

async function mainV2() {
    fs.mkdirSync(COMPILED_DIR_V2, { recursive: true });
    for (const name of CONTRACTS) {
        const c = await compileContractV2(name);
        fs.writeFileSync(path.join(COMPILED_DIR_V2, `${name}.json`), compiledJson(c));
        console.log(`v2 ${name}: ${c.codeHashHex}`);
    }
}

async function main() {
    if (process.argv.includes('--v2')) return mainV2();
    fs.mkdirSync(COMPILED_DIR, { recursive: true });
    for (const name of CONTRACTS) {
        const c = await compileContract(name);
        fs.writeFileSync(path.join(COMPILED_DIR, `${name}.json`), compiledJson(c));
        console.log(`${name}: ${c.codeHashHex}`);
    }
}

if (require.main === module) {
    main().catch((e) => {
        console.error(e);
        process.exit(1);
    });
}
