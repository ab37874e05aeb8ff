// A copy of the sandbox's bundled network config with gas prices (params 20, 21) and message
// forwarding prices (params 24, 25) multiplied by a factor.
import { Builder, Cell, Dictionary, Slice, beginCell } from '@ton/core';
import { defaultConfig } from '@ton/sandbox';

function scaleGas(s: Slice, f: bigint): Cell {
    const b = beginCell();
    const walk = (s: Slice, b: Builder) => {
        const tag = s.loadUint(8);
        b.storeUint(tag, 8);
        if (tag === 0xd1) {
            // gas_flat_pfx: flat_gas_limit flat_gas_price, then the inner prices
            b.storeUint(s.loadUintBig(64), 64);
            b.storeUint(s.loadUintBig(64) * f, 64);
            walk(s, b);
        } else if (tag === 0xde || tag === 0xdd) {
            // gas_prices(_ext): gas_price first (in 2^-16 nanoTON), the limits after it unchanged
            b.storeUint(s.loadUintBig(64) * f, 64);
            b.storeSlice(s);
        } else {
            throw new Error(`unexpected gas prices tag ${tag.toString(16)}`);
        }
    };
    walk(s, b);
    return b.endCell();
}

function scaleMsg(s: Slice, f: bigint): Cell {
    const tag = s.loadUint(8);
    if (tag !== 0xea) throw new Error(`unexpected msg prices tag ${tag.toString(16)}`);
    return beginCell()
        .storeUint(tag, 8)
        .storeUint(s.loadUintBig(64) * f, 64) // lump_price
        .storeUint(s.loadUintBig(64) * f, 64) // bit_price
        .storeUint(s.loadUintBig(64) * f, 64) // cell_price
        .storeSlice(s) // ihr factor, first_frac, next_frac
        .endCell();
}

/** The bundled config with params 20/21 (gas) and 24/25 (forwarding) multiplied by `factor`. */
export function scaledConfig(factor: bigint): Cell {
    const config = Cell.fromBase64(defaultConfig);
    const dict = Dictionary.loadDirect(Dictionary.Keys.Int(32), Dictionary.Values.Cell(), config);
    for (const p of [20, 21]) dict.set(p, scaleGas(dict.get(p)!.beginParse(), factor));
    for (const p of [24, 25]) dict.set(p, scaleMsg(dict.get(p)!.beginParse(), factor));
    return beginCell().storeDictDirect(dict).endCell();
}
