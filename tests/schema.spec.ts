// The schema in its four mirrors agrees: schema.tlb (tags), wrappers/schema.ts (codec),
// wrappers/constants.ts (Op, Err, value constants), contracts/errors.tolk and constants.tolk;
// and the committed golden vectors are current and decode back to their fields.
import * as fs from 'fs';
import * as path from 'path';
import { Cell } from '@ton/core';
import { TYPES, decode, toJson } from '../wrappers/schema';
import * as C from '../wrappers/constants';
import { VECTORS_DIR, childAddressesFile, vectorFile, vectorTypes } from '../scripts/contracts/golden';

const REPO = path.resolve(__dirname, '..');
const read = (p: string) => fs.readFileSync(path.join(REPO, p), 'utf-8');
const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

describe('schema mirrors', () => {
    it('every TL-B constructor of schema.tlb is in the codec with the same tag', () => {
        const tlb = read('contracts/schema.tlb').replace(/\/\/.*$/gm, '');
        const ctors = [...tlb.matchAll(/^([a-z_0-9]+)(#([0-9a-f]{8})|\$_)/gm)]
            .map((m) => ({ name: m[1], tag: m[3] ? parseInt(m[3], 16) : undefined }))
            .filter((c) => c.name !== 'unit');
        const codec = TYPES.map((t) => ({ name: t.name, tag: t.tag }));
        expect(codec.sort((a, b) => a.name.localeCompare(b.name))).toEqual(
            ctors.sort((a, b) => a.name.localeCompare(b.name)),
        );
    });

    it('Op in constants.ts equals the codec tags', () => {
        for (const t of TYPES.filter((t) => t.tag !== undefined && t.name !== 'receipt_body')) {
            expect([t.name, (C.Op as any)[camel(t.name)]]).toEqual([t.name, t.tag]);
        }
        expect(C.RECEIPT_TAG).toBe(TYPES.find((t) => t.name === 'receipt_body')!.tag);
    });

    it('Err in constants.ts equals the enum of errors.tolk', () => {
        const tolk = [...read('contracts/errors.tolk').matchAll(/^\s+([A-Za-z]+) = (\d+),/gm)].map((m) => [m[1], +m[2]]);
        const ts = Object.entries(C.Err).filter(([, v]) => typeof v === 'number');
        expect(ts).toEqual(tolk);
        for (const [, code] of tolk) {
            expect(code).toBeGreaterThanOrEqual(64);
            expect(code).toBeLessThanOrEqual(2048);
        }
    });

    it('value constants equal contracts/constants.tolk', () => {
        const src = read('contracts/constants.tolk');
        const tolk = (name: string) => BigInt(new RegExp(`const ${name} = (\\d+)`).exec(src)![1]);
        expect(tolk('REGISTER_GAS')).toBe(C.REGISTER_GAS);
        expect(tolk('SUBMIT_BASE_GAS')).toBe(C.SUBMIT_BASE_GAS);
        expect(tolk('SUBMIT_PER_RECEIPT')).toBe(C.SUBMIT_PER_RECEIPT);
        expect(tolk('SETTLE_VALUE')).toBe(C.SETTLE_VALUE);
        expect(tolk('ESCROW_STORAGE_RESERVE')).toBe(C.ESCROW_STORAGE_RESERVE);
        expect(tolk('MAX_BATCH')).toBe(BigInt(C.MAX_BATCH));
        expect(tolk('BPS')).toBe(C.BPS);
    });
});

describe('golden vectors', () => {
    for (const type of vectorTypes()) {
        it(`${type}.json is current and decodes back to its fields`, () => {
            const committed = fs.readFileSync(path.join(VECTORS_DIR, `${type}.json`), 'utf-8');
            expect(committed).toBe(vectorFile(type));
            for (const c of JSON.parse(committed)) {
                const cell = Cell.fromBase64(c.boc);
                expect(toJson(type, decode(type, cell))).toEqual(c.fields);
            }
        });
    }

    it('child_addresses.json is current (committed code, deterministic derivation)', () => {
        const committed = fs.readFileSync(path.join(VECTORS_DIR, 'child_addresses.json'), 'utf-8');
        expect(committed).toBe(childAddressesFile());
    });

    it('decoding rejects trailing data', () => {
        const c = JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, 'excesses.json'), 'utf-8'))[0];
        const cell = Cell.fromBase64(c.boc).asBuilder().storeUint(1, 1).endCell();
        expect(() => decode('excesses', cell)).toThrow(/trailing/);
    });
});
