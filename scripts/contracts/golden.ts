// Writes the golden vectors tests/vectors/<type>.json from the TypeScript codec (wrappers/schema.ts):
// each file is a JSON array of {"fields": {...}, "boc": "<base64 BOC>"}. tests/vectors.spec.ts
// fails when the committed files differ from what this produces.
import * as fs from 'fs';
import * as path from 'path';
import { TYPES, encode, toJson } from '../../wrappers/schema';
import { CASES } from '../../tests/helpers/vector-cases';
import { Address, Cell } from '@ton/core';
import { escrowAddress, workerAddress } from '../../wrappers/common';

export const VECTORS_DIR = path.resolve(__dirname, '..', '..', 'tests', 'vectors');

/** BOC flags of every vector: no index, with CRC32C (@ton/core's default). */
export function vectorFile(type: string): string {
    const cases = CASES[type].map((fields) => ({
        fields: toJson(type, fields),
        boc: encode(type, fields).toBoc({ idx: false, crc32: true }).toString('base64'),
    }));
    return JSON.stringify(cases, null, 2) + '\n';
}

export function vectorTypes(): string[] {
    return TYPES.map((t) => t.name);
}

const COMPILED = path.resolve(__dirname, '..', '..', 'contracts', 'compiled');
const code = (name: string) => Cell.fromBase64(JSON.parse(fs.readFileSync(path.join(COMPILED, `${name}.json`), 'utf-8')).codeBoc64);

/**
 * tests/vectors/child_addresses.json: the Worker and Escrow addresses of (root, owner) with the
 * committed code, so the sdk can check its derivation (StateInit of code + worker_data /
 * escrow_data initial cells, workchain 0) end to end.
 */
export function childAddressesFile(): string {
    const pairs: [string, string][] = [
        ['0:' + '0f'.repeat(32), '0:' + '01'.repeat(32)],
        ['0:' + '0f'.repeat(32), '-1:' + 'ab'.repeat(32)],
    ];
    const worker = code('worker');
    const escrow = code('escrow');
    const cases = pairs.map(([r, o]) => {
        const root = Address.parse(r);
        const owner = Address.parse(o);
        return {
            root: root.toRawString(),
            owner: owner.toRawString(),
            worker_code_hash: worker.hash().toString('hex'),
            escrow_code_hash: escrow.hash().toString('hex'),
            worker_address: workerAddress(root, owner, worker).toRawString(),
            escrow_address: escrowAddress(root, owner, escrow).toRawString(),
        };
    });
    return JSON.stringify(cases, null, 2) + '\n';
}

if (require.main === module) {
    fs.writeFileSync(path.join(VECTORS_DIR, 'child_addresses.json'), childAddressesFile());
    fs.mkdirSync(VECTORS_DIR, { recursive: true });
    for (const type of vectorTypes()) {
        fs.writeFileSync(path.join(VECTORS_DIR, `${type}.json`), vectorFile(type));
    }
    console.log(`wrote ${vectorTypes().length} vector files to ${VECTORS_DIR}`);
}
