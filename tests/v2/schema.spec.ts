// The v2 schema in its mirrors: contracts/v2/schema.tlb (tags), wrappers/v2/schema.ts (codec),
// wrappers/v2/constants.ts (Op, Err, value constants), contracts/v2/errors.tolk, constants.tolk;
// and the committed v2 golden vectors are current and decode back to their fields.
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import { Cell } from '@ton/core';
import { signVerify } from '@ton/crypto';
import { TYPES, decode, encode, toJson } from '../../wrappers/v2/schema';
import * as C from '../../wrappers/v2/constants';
import {
    VECTORS_DIR_V2, childAddressesFileV2, receiptChainFile, vectorFileV2, vectorTypesV2,
} from '../../scripts/contracts/golden-v2';
import { keyPairFromSeed } from '@ton/crypto';

const REPO = path.resolve(__dirname, '..', '..');
const read = (p: string) => fs.readFileSync(path.join(REPO, p), 'utf-8');

describe('v2 schema mirrors', () => {
    it('every TL-B constructor of contracts/v2/schema.tlb is in the codec with the same tag', () => {
        const tlb = read('contracts/v2/schema.tlb').replace(/\/\/.*$/gm, '');
        const ctors = [...tlb.matchAll(/^([a-z_0-9]+)(#([0-9a-f]{8})|\$_)/gm)]
            .map((m) => ({ name: m[1], tag: m[3] ? parseInt(m[3], 16) : undefined }))
            .filter((c) => c.name !== 'unit');
        const codec = TYPES.map((t) => ({ name: t.name, tag: t.tag }));
        expect(codec.sort((a, b) => a.name.localeCompare(b.name))).toEqual(ctors.sort((a, b) => a.name.localeCompare(b.name)));
    });

    it('Tolk message structs carry the same opcodes as the codec', () => {
        const tolk = read('contracts/v2/messages.tolk') + read('contracts/v2/records.tolk');
        const structs = [...tolk.matchAll(/struct \((0x[0-9a-f]{8})\) ([A-Za-z]+)/g)].map((m) => [m[2], parseInt(m[1], 16)] as const);
        const snake = (s: string) => s.replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase());
        for (const [name, tag] of structs) {
            expect([name, TYPES.find((t) => t.name === snake(name))?.tag]).toEqual([name, tag]);
        }
        expect(structs.length).toBe(TYPES.filter((t) => t.tag !== undefined).length);
    });

    it('Err in wrappers/v2/constants.ts equals the enum of contracts/v2/errors.tolk', () => {
        const tolk = [...read('contracts/v2/errors.tolk').matchAll(/^\s+([A-Za-z]+) = (\d+),/gm)].map((m) => [m[1], +m[2]]);
        const ts = Object.entries(C.Err).filter(([, v]) => typeof v === 'number');
        expect(ts).toEqual(tolk);
        for (const [, code] of tolk) {
            expect(code).toBeGreaterThanOrEqual(64);
            expect(code).toBeLessThanOrEqual(2048);
        }
    });

    it('value constants equal contracts/v2/constants.tolk', () => {
        const src = read('contracts/v2/constants.tolk');
        const tolk = (name: string) => BigInt(new RegExp(`const ${name} = (\\d+)`).exec(src)![1]);
        expect(tolk('BPS')).toBe(C.BPS);
        expect(tolk('AMOUNT_LIMIT')).toBe(C.AMOUNT_LIMIT);
        expect(tolk('ESCROW_STORAGE_RESERVE')).toBe(C.ESCROW_STORAGE_RESERVE);
        expect(tolk('MAX_OPEN_CHANNELS')).toBe(BigInt(C.MAX_OPEN_CHANNELS));
        expect(tolk('MAX_RECEIPT_KEYS')).toBe(BigInt(C.MAX_RECEIPT_KEYS));
        for (const v of Object.values(C.PayoutReason).filter((v) => typeof v === 'number')) {
            expect(src).toMatch(new RegExp(`const PAYOUT_[A-Z_]+ = ${v}\\b`));
        }
    });
});

describe('v2 golden vectors', () => {
    for (const type of vectorTypesV2()) {
        it(`${type}.json is current and decodes back to its fields`, () => {
            const committed = fs.readFileSync(path.join(VECTORS_DIR_V2, `${type}.json`), 'utf-8');
            expect(committed).toBe(vectorFileV2(type));
            for (const c of JSON.parse(committed)) {
                expect(toJson(type, decode(type, Cell.fromBase64(c.boc)))).toEqual(c.fields);
            }
        });
    }

    it('child_addresses.json is current (committed v2 code)', () => {
        expect(fs.readFileSync(path.join(VECTORS_DIR_V2, 'child_addresses.json'), 'utf-8')).toBe(childAddressesFileV2());
    });

    it('receipt_chain.json is current, its signatures verify and its accumulator chains', () => {
        const committed = fs.readFileSync(path.join(VECTORS_DIR_V2, 'receipt_chain.json'), 'utf-8');
        expect(committed).toBe(receiptChainFile());
        const chain = JSON.parse(committed);
        const rk = keyPairFromSeed(Buffer.from(chain.receipt_key_seed, 'hex'));
        let acc = Buffer.alloc(32, 0);
        for (const step of chain.steps) {
            const signed = decode('signed_receipt', Cell.fromBase64(step.receipt_boc));
            const hash = encode('receipt_body', signed.body).hash();
            expect(signVerify(hash, signed.signature, rk.publicKey)).toBe(true);
            expect(signed.body.prev_acc.equals(acc)).toBe(true);
            acc = createHash('sha256').update(acc).update(hash).digest();
            expect(acc.toString('hex')).toBe(step.acc_after);
        }
        const v = decode('signed_voucher', Cell.fromBase64(chain.voucher_boc));
        expect(v.body.acc.equals(acc)).toBe(true);
        const vk = keyPairFromSeed(Buffer.from(chain.voucher_key_seed, 'hex'));
        expect(signVerify(encode('voucher_body', v.body).hash(), v.signature, vk.publicKey)).toBe(true);
    });

    it('decoding rejects trailing data', () => {
        const c = JSON.parse(fs.readFileSync(path.join(VECTORS_DIR_V2, 'excesses.json'), 'utf-8'))[0];
        const cell = Cell.fromBase64(c.boc).asBuilder().storeUint(1, 1).endCell();
        expect(() => decode('excesses', cell)).toThrow(/trailing/);
    });
});
