// The committed v2 code artefacts (contracts/v2/compiled/*.json) must equal a fresh compile of the
// v2 Tolk sources; `scripts/contracts/compile-v2` rewrites them.
import * as fs from 'fs';
import * as path from 'path';
import { Cell } from '@ton/core';
import { CONTRACTS, COMPILED_DIR_V2, compileContractV2, compiledJson } from '../../scripts/contracts/artifacts';

describe('compiled v2 artefacts', () => {
    for (const name of CONTRACTS) {
        it(`v2/${name}.json matches the sources`, async () => {
            const fresh = await compileContractV2(name);
            const committed = fs.readFileSync(path.join(COMPILED_DIR_V2, `${name}.json`), 'utf-8');
            expect(committed).toBe(compiledJson(fresh));
            const hash = Cell.fromBase64(fresh.codeBoc64).hash().toString('hex').toUpperCase();
            expect(hash).toBe(fresh.codeHashHex.toUpperCase());
        });
    }
});
