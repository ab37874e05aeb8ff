// The committed code artefacts (contracts/compiled/*.json, embedded by the Rust sdk) must equal a
// fresh compile of the Tolk sources; `scripts/contracts/compile` rewrites them.
import * as fs from 'fs';
import * as path from 'path';
import { Cell } from '@ton/core';
import { CONTRACTS, COMPILED_DIR, compileContract, compiledJson } from '../scripts/contracts/artifacts';

describe('compiled artefacts', () => {
    for (const name of CONTRACTS) {
        it(`${name}.json matches the sources`, async () => {
            const fresh = await compileContract(name);
            const committed = fs.readFileSync(path.join(COMPILED_DIR, `${name}.json`), 'utf-8');
            expect(committed).toBe(compiledJson(fresh));
            // The hash is the code cell's representation hash, as the sdk will check.
            const hash = Cell.fromBase64(fresh.codeBoc64).hash().toString('hex').toUpperCase();
            expect(hash).toBe(fresh.codeHashHex.toUpperCase());
        });
    }
});
