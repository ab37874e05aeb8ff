// Writes the golden vectors tests/vectors/<type>.json from the TypeScript codec (wrappers/schema.ts):
// each file is a JSON array of {"fields": {...}, "boc": "<base64 BOC>"}. tests/vectors.spec.ts
// fails when the committed files differ from what this produces.
import * as fs from 'fs';
import * as path from 'path';
import { TYPES, encode, toJson } from '../../wrappers/schema';
import { CASES } from '../../tests/helpers/vector-cases';

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

if (require.main === module) {
    fs.mkdirSync(VECTORS_DIR, { recursive: true });
    for (const type of vectorTypes()) {
        fs.writeFileSync(path.join(VECTORS_DIR, `${type}.json`), vectorFile(type));
    }
    console.log(`wrote ${vectorTypes().length} vector files to ${VECTORS_DIR}`);
}
