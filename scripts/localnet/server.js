#!/usr/bin/env node
// Cocoon localnet: the reference TVM emulator (@ton/sandbox) behind an HTTP server that speaks the
// subset of the toncenter API (v2 + v3) the Rust sdk uses, plus a faucet, a clock that can be
// moved forward, and state snapshots. Plain Node (no TypeScript) so it starts in about a second.
//
// Usage: node scripts/localnet/server.js [--port N] [--host H] [--state FILE] [--exit-on-stdin-close]
//          [--block-interval MS] [--index-lag MS] [--rate-limit RPS] [--rate-limit-keyed RPS]
//   --port 0 picks a free port. The first stdout line is `COCOON_LOCALNET_URL=http://host:port`.
//   --state FILE loads the chain from FILE if it exists and saves it there after every change, so a
//   local network survives a restart.
//
// Timing (default: instant, every send executed inside its HTTP call). With a block interval the
// network behaves like the real one (mainnet: a block every ~0.4 s):
//   --block-interval MS ($COCOON_LOCALNET_BLOCK_MS): sends are checked against the current state at
//     broadcast (a wallet refusing the message answers 500 at once, as a liteserver does), queued,
//     and executed together at the next block boundary; their transactions and effects appear only
//     then. Two messages with the same wallet seqno are both accepted at broadcast and one of them
//     is dropped at execution, as on the real network.
//   --index-lag MS ($COCOON_LOCALNET_INDEX_LAG_MS): the v3 indexer sees a block's transactions only
//     this long after the block (v2 reads, like liteservers, see them at once).
//   --rate-limit RPS ($COCOON_LOCALNET_RATE_LIMIT) and --rate-limit-keyed RPS
//     ($COCOON_LOCALNET_RATE_LIMIT_KEYED): toncenter's per-second limits for requests without and
//     with an API key (X-API-Key header or api_key parameter); over the limit the API answers 429
//     as toncenter does. 0 = unlimited. The /localnet/ development routes are never limited.
'use strict';

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { Blockchain, snapshotToSerializable, snapshotFromSerializable } = require('@ton/sandbox');
const {
  Address, Cell, beginCell, loadMessage, storeMessage, loadTransaction, storeTransaction,
  storeStateInit,
} = require('@ton/core');

const USAGE = 'usage: server.js [--port N] [--host H] [--state FILE] [--exit-on-stdin-close] '
  + '[--block-interval MS] [--index-lag MS] [--rate-limit RPS] [--rate-limit-keyed RPS]';

// Flags win over the environment; the environment over the defaults (instant, unlimited).
function parseArgs(argv, env = process.env) {
  const out = {
    port: 0,
    host: '127.0.0.1',
    state: null,
    exitOnStdinClose: false,
    blockMs: env.COCOON_LOCALNET_BLOCK_MS ?? '0',
    indexLagMs: env.COCOON_LOCALNET_INDEX_LAG_MS ?? '0',
    rateLimit: env.COCOON_LOCALNET_RATE_LIMIT ?? '0',
    rateLimitKeyed: env.COCOON_LOCALNET_RATE_LIMIT_KEYED ?? '0',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') out.port = Number(argv[++i]);
    else if (a === '--host') out.host = argv[++i];
    else if (a === '--state') out.state = argv[++i];
    else if (a === '--exit-on-stdin-close') out.exitOnStdinClose = true;
    else if (a === '--block-interval') out.blockMs = argv[++i];
    else if (a === '--index-lag') out.indexLagMs = argv[++i];
    else if (a === '--rate-limit') out.rateLimit = argv[++i];
    else if (a === '--rate-limit-keyed') out.rateLimitKeyed = argv[++i];
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      fail(`unknown argument ${a}\n${USAGE}`);
    }
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) fail('--port must be 0..65535');
  for (const [key, flag, max] of [
    ['blockMs', '--block-interval', 60000],
    ['indexLagMs', '--index-lag', 600000],
    ['rateLimit', '--rate-limit', 100000],
    ['rateLimitKeyed', '--rate-limit-keyed', 100000],
  ]) {
    const v = String(out[key]).trim();
    if (!/^\d+$/.test(v) || Number(v) > max) fail(`${flag} must be an integer 0..${max}, got ${JSON.stringify(out[key])}`);
    out[key] = Number(v);
  }
  return out;
}

function fail(message) {
  console.error(`localnet: ${message}`);
  process.exit(2);
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The treasury seed of the faucet: fixed so a saved state keeps the same faucet address.
const FAUCET_SEED = 'cocoon-localnet-faucet';
const FAUCET_BALANCE = 10n ** 18n; // 1e9 TON

class Localnet {
  constructor(blockchain, statePath, timing = {}) {
    this.bc = blockchain;
    this.statePath = statePath;
    // Instant mode: a "block" is a counter bumped on every send. Block mode: bumped per block.
    this.seqno = 1;
    this.timeOffset = 0; // seconds added to the wall clock (POST /localnet/time)
    // { address: string (raw), tx: Transaction, indexedAt: ms since epoch }, in execution order
    this.txs = [];
    this.lock = Promise.resolve();
    this.blockMs = timing.blockMs || 0;
    this.indexLagMs = timing.indexLagMs || 0;
    // Block mode: what waits for the next block boundary, in broadcast order.
    this.pending = [];
    this.blockTimer = null;
  }

  static async create(statePath, timing = {}) {
    const bc = await Blockchain.create();
    const net = new Localnet(bc, statePath, timing);
    if (statePath && fs.existsSync(statePath)) {
      const saved = JSON.parse(fs.readFileSync(statePath, 'utf8'));
      await bc.loadFrom(snapshotFromSerializable(saved.chain));
      net.seqno = saved.seqno;
      net.timeOffset = saved.timeOffset;
      net.txs = saved.txs.map((t) => ({
        address: t.address,
        tx: loadTransaction(Cell.fromBase64(t.boc).beginParse()),
        indexedAt: 0,
      }));
    }
    net.faucet = await bc.treasury(FAUCET_SEED, { balance: FAUCET_BALANCE, resetBalanceIfZero: true });
    if (net.blockMs > 0) {
      net.blockTimer = setInterval(() => {
        net.produceBlock().catch((e) => console.error(`localnet: block ${net.seqno}: ${e.stack || e}`));
      }, net.blockMs);
    }
    return net;
  }

  now() {
    return Math.floor(Date.now() / 1000) + this.timeOffset;
  }

  // Serialises every state-changing call: the emulator is not re-entrant.
  exclusive(fn) {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => {});
    return run;
  }

  save() {
    if (!this.statePath) return;
    const data = {
      chain: snapshotToSerializable(this.bc.snapshot()),
      seqno: this.seqno,
      timeOffset: this.timeOffset,
      txs: this.txs.map((t) => ({
        address: t.address,
        boc: beginCell().store(storeTransaction(t.tx)).endCell().toBoc().toString('base64'),
      })),
    };
    // Write-then-rename so a crash never leaves half a snapshot.
    const tmp = `${this.statePath}.tmp`;
    fs.mkdirSync(path.dirname(path.resolve(this.statePath)), { recursive: true });
    fs.writeFileSync(tmp, JSON.stringify(data, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    fs.renameSync(tmp, this.statePath);
  }

  // Keeps a trace's account transactions; the v3 indexer sees them `indexLagMs` later.
  keep(result) {
    const indexedAt = Date.now() + this.indexLagMs;
    for (const tx of result.transactions) {
      const info = tx.inMessage ? tx.inMessage.info : null;
      const dest = info && info.dest && Address.isAddress(info.dest) ? info.dest : null;
      if (!dest) continue; // tick-tock or unaddressed: not an account transaction we serve
      this.txs.push({ address: dest.toRawString(), tx, indexedAt });
    }
  }

  record(result) {
    this.keep(result);
    this.seqno += 1;
    this.save();
  }

  async sendBoc(bocB64) {
    let cell;
    try {
      cell = Cell.fromBase64(bocB64);
    } catch (e) {
      throw new HttpError(400, `invalid boc: ${e.message}`);
    }
    let msg;
    try {
      msg = loadMessage(cell.beginParse());
    } catch (e) {
      throw new HttpError(400, `boc is not a message: ${e.message}`);
    }
    if (msg.info.type !== 'external-in') throw new HttpError(400, 'only external-in messages can be sent');
    if (this.blockMs > 0) {
      await this.checkExternal(msg);
      this.pending.push({ kind: 'external', msg });
      return { cell, msg };
    }
    await this.exclusive(async () => {
      this.bc.now = this.now();
      let result;
      try {
        result = await this.bc.sendMessage(msg);
      } catch (e) {
        throw rejectedExternal(e);
      }
      this.record(result);
    });
    return { cell, msg };
  }

  // What a liteserver does at broadcast: run the external's first transaction on the current state
  // and refuse it if the account does not accept it; the state itself is left as it was (the
  // message is executed for real only in the next block, against the state of that moment).
  async checkExternal(msg) {
    await this.exclusive(async () => {
      const before = this.bc.snapshot();
      try {
        this.bc.now = this.now();
        // A queue of its own: the first transaction's outgoing messages must not stay queued for
        // the next real send.
        const steps = await this.bc.sendMessageIter(msg, { allowParallel: true });
        await steps.next();
      } catch (e) {
        throw rejectedExternal(e);
      } finally {
        await this.bc.loadFrom(before);
      }
    });
  }

  // Block mode: executes everything broadcast since the last block, in order, at one chain time.
  // A message the state no longer accepts (its seqno was taken by an earlier one, it expired) is
  // dropped without a trace, as on the real network.
  async produceBlock() {
    await this.exclusive(async () => {
      // Blocks come whether or not anything was sent, as on the real chain.
      this.seqno += 1;
      const batch = this.pending.splice(0);
      if (batch.length === 0) return;
      this.bc.now = this.now();
      for (const item of batch) {
        try {
          const result = item.kind === 'external'
            ? await this.bc.sendMessage(item.msg)
            : await this.faucet.send({ to: item.address, value: item.amount, bounce: false });
          this.keep(result);
          if (item.done) item.done(result);
        } catch (e) {
          if (item.kind === 'external') {
            const h = normalizedHash(item.msg).toString('hex');
            console.error(`localnet: block ${this.seqno + 1}: dropped external ${h}: ${firstLine(e.message)}`);
          } else {
            item.failed(e);
          }
        }
      }
      this.save();
    });
  }

  async fund(address, amount) {
    const txOf = (result) => {
      const tx = result.transactions.find((t) => t.inMessage && t.inMessage.info.dest && t.inMessage.info.dest.equals && t.inMessage.info.dest.equals(address));
      return tx ? txId(tx) : null;
    };
    if (this.blockMs > 0) {
      // The faucet's transfer waits for the next block like any other send.
      return new Promise((resolve, reject) => {
        this.pending.push({ kind: 'faucet', address, amount, done: (r) => resolve(txOf(r)), failed: reject });
      });
    }
    return this.exclusive(async () => {
      this.bc.now = this.now();
      const result = await this.faucet.send({ to: address, value: amount, bounce: false });
      this.record(result);
      return txOf(result);
    });
  }

  // `from` is what the reader sees: every block's transactions (v2, liteservers) by default.
  transactionsOf(address, from = this.txs) {
    const raw = address.toRawString();
    return from.filter((t) => t.address === raw).map((t) => t.tx);
  }

  // What the v3 indexer has seen so far (it lags the blocks by `indexLagMs`).
  indexed() {
    const now = Date.now();
    return this.txs.filter((t) => t.indexedAt <= now);
  }

  stop() {
    if (this.blockTimer) clearInterval(this.blockTimer);
  }
}

// toncenter answers a rejected external with HTTP 500 and this wording.
function rejectedExternal(e) {
  return new HttpError(500, `LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted\n${e.message}`);
}

function firstLine(s) {
  return String(s).split('\n')[0];
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers (toncenter shapes)

const b64 = (buf) => Buffer.from(buf).toString('base64');
const cellB64 = (c) => c.toBoc({ idx: false }).toString('base64');

function parseAddress(s) {
  if (!s) throw new HttpError(400, 'address is required');
  try {
    return Address.parse(s);
  } catch (e) {
    throw new HttpError(400, `invalid address ${JSON.stringify(s)}: ${e.message}`);
  }
}

function txId(tx) {
  return { '@type': 'internal.transactionId', lt: tx.lt.toString(), hash: b64(tx.hash()) };
}

// TEP-467 normalised hash of an external-in message: src addr_none, import_fee 0, no init, body
// in a reference.
function normalizedHash(msg) {
  const norm = {
    info: { type: 'external-in', src: null, dest: msg.info.dest, importFee: 0n },
    init: null,
    body: msg.body,
  };
  return beginCell().store(storeMessage(norm, { forceRef: true })).endCell().hash();
}

function opcodeOf(body) {
  const s = body.beginParse();
  return s.remainingBits >= 32 ? s.loadUint(32) : null;
}

function msgV2(m) {
  if (!m) return null;
  const info = m.info;
  return {
    '@type': 'raw.message',
    hash: b64(beginCell().store(storeMessage(m)).endCell().hash()),
    source: info.src && Address.isAddress(info.src) ? info.src.toString() : '',
    destination: info.dest && Address.isAddress(info.dest) ? info.dest.toString() : '',
    value: info.type === 'internal' ? info.value.coins.toString() : '0',
    fwd_fee: info.type === 'internal' ? info.forwardFee.toString() : '0',
    created_lt: info.createdLt !== undefined ? info.createdLt.toString() : '0',
    msg_data: { '@type': 'msg.dataRaw', body: cellB64(m.body), init_state: m.init ? cellB64(beginCell().store(storeStateInit(m.init)).endCell()) : '' },
  };
}

function phases(tx) {
  const d = tx.description;
  const out = { aborted: false, compute_ph: { skipped: true }, action: null };
  if (d.type !== 'generic') return out;
  out.aborted = d.aborted;
  // toncenter v3 names the storage phase's fee too: exact balance checks need it (storage fees
  // accrue with real time here).
  if (d.storagePhase) {
    out.storage_ph = { storage_fees_collected: d.storagePhase.storageFeesCollected.toString() };
  }
  if (d.computePhase.type === 'vm') {
    out.compute_ph = {
      skipped: false,
      success: d.computePhase.success,
      exit_code: d.computePhase.exitCode,
      gas_used: d.computePhase.gasUsed.toString(),
      vm_steps: d.computePhase.vmSteps,
    };
  } else {
    out.compute_ph = { skipped: true, reason: d.computePhase.reason };
  }
  if (d.actionPhase) {
    out.action = { success: d.actionPhase.success, result_code: d.actionPhase.resultCode };
  }
  return out;
}

function txV2(tx, address) {
  return {
    '@type': 'raw.transaction',
    address: { account_address: address.toString() },
    utime: tx.now,
    data: cellB64(tx.raw),
    transaction_id: txId(tx),
    fee: tx.totalFees.coins.toString(),
    in_msg: msgV2(tx.inMessage),
    out_msgs: tx.outMessages.values().map(msgV2),
  };
}

function msgV3(m) {
  if (!m) return null;
  const info = m.info;
  const out = {
    hash: beginCell().store(storeMessage(m)).endCell().hash().toString('base64'),
    source: info.src && Address.isAddress(info.src) ? info.src.toRawString() : null,
    destination: info.dest && Address.isAddress(info.dest) ? info.dest.toRawString() : null,
    value: info.type === 'internal' ? info.value.coins.toString() : null,
    bounce: info.type === 'internal' ? info.bounce : null,
    bounced: info.type === 'internal' ? info.bounced : null,
    opcode: opcodeOf(m.body) === null ? null : `0x${opcodeOf(m.body).toString(16).padStart(8, '0')}`,
    created_lt: info.createdLt !== undefined ? info.createdLt.toString() : null,
    message_content: { body: cellB64(m.body) },
  };
  if (info.type === 'external-in') out.hash_norm = normalizedHash(m).toString('base64');
  return out;
}

function txV3(tx, address) {
  return {
    account: address.toRawString(),
    hash: tx.hash().toString('base64'),
    lt: tx.lt.toString(),
    now: tx.now,
    orig_status: tx.oldStatus,
    end_status: tx.endStatus,
    total_fees: tx.totalFees.coins.toString(),
    in_msg: msgV3(tx.inMessage),
    out_msgs: tx.outMessages.values().map(msgV3),
    description: phases(tx),
  };
}

function accountStatus(contract) {
  const s = contract.accountState;
  if (!s) return 'uninitialized';
  if (s.type === 'active') return 'active';
  if (s.type === 'frozen') return 'frozen';
  return 'uninitialized';
}

// ---- get-method stacks (toncenter v2: [["num","0x.."], ["tvm.Cell", b64], ...]) ----

function stackIn(items) {
  if (!Array.isArray(items)) throw new HttpError(400, 'stack must be an array');
  return items.map((it) => {
    if (!Array.isArray(it) || it.length !== 2) throw new HttpError(400, `bad stack entry ${JSON.stringify(it)}`);
    const [t, v] = it;
    try {
      switch (t) {
        case 'num': case 'int': case 'number':
          return { type: 'int', value: String(v).startsWith('-') ? -BigInt(String(v).slice(1)) : BigInt(v) };
        case 'cell': case 'tvm.Cell':
          return { type: 'cell', cell: Cell.fromBase64(typeof v === 'object' ? v.bytes : v) };
        case 'slice': case 'tvm.Slice':
          return { type: 'slice', cell: Cell.fromBase64(typeof v === 'object' ? v.bytes : v) };
        case 'null':
          return { type: 'null' };
        default:
          throw new Error(`unsupported type ${t}`);
      }
    } catch (e) {
      throw new HttpError(400, `bad stack entry ${JSON.stringify(it)}: ${e.message}`);
    }
  });
}

function numStr(v) {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

// The shapes toncenter's v2 really returns: slices and builders come back as cells, and null as an
// empty list — a client that expects the emulator's own names breaks on the real network.
function stackOut(items) {
  return items.map((it) => {
    switch (it.type) {
      case 'int': return ['num', numStr(it.value)];
      case 'nan': return ['num', 'NaN'];
      case 'null': return ['list', { '@type': 'tvm.list', elements: [] }];
      case 'cell':
      case 'slice':
      case 'builder':
        return ['cell', { bytes: cellB64(it.cell) }];
      case 'tuple': return ['tuple', { '@type': 'tvm.tuple', elements: it.items.map(entryOut) }];
      default: return ['unknown', null];
    }
  });
}

// Tuple elements use toncenter's typed-object form.
function entryOut(it) {
  switch (it.type) {
    case 'int': return { '@type': 'tvm.stackEntryNumber', number: { '@type': 'tvm.numberDecimal', number: it.value.toString() } };
    case 'cell': return { '@type': 'tvm.stackEntryCell', cell: { '@type': 'tvm.cell', bytes: cellB64(it.cell) } };
    case 'slice': return { '@type': 'tvm.stackEntrySlice', slice: { '@type': 'tvm.slice', bytes: cellB64(it.cell) } };
    case 'tuple': return { '@type': 'tvm.stackEntryTuple', tuple: { '@type': 'tvm.tuple', elements: it.items.map(entryOut) } };
    case 'null': return { '@type': 'tvm.stackEntryTuple', tuple: { '@type': 'tvm.tuple', elements: [] } };
    default: return { '@type': 'tvm.stackEntryUnsupported' };
  }
}

// ---------------------------------------------------------------------------------------------
// Routes

function intParam(params, name, dflt) {
  const v = params[name];
  if (v === undefined || v === null || v === '') return dflt;
  if (!/^\d+$/.test(String(v))) throw new HttpError(400, `${name} must be a non-negative integer`);
  return BigInt(v);
}

async function v2(net, method, params) {
  switch (method) {
    case 'getMasterchainInfo':
      return {
        '@type': 'blocks.masterchainInfo',
        last: { '@type': 'ton.blockIdExt', workchain: -1, shard: '-9223372036854775808', seqno: net.seqno, root_hash: '', file_hash: '' },
        init: { '@type': 'ton.blockIdExt', workchain: -1, shard: '-9223372036854775808', seqno: 0, root_hash: '', file_hash: '' },
        state_root_hash: '',
      };
    case 'getAddressInformation':
    case 'getAddressBalance':
    case 'getWalletInformation': {
      const addr = parseAddress(params.address);
      const c = await net.bc.getContract(addr);
      const state = accountStatus(c);
      if (method === 'getAddressBalance') return c.balance.toString();
      const last = { '@type': 'internal.transactionId', lt: c.lastTransactionLt.toString(), hash: b64(Buffer.from(c.lastTransactionHash.toString(16).padStart(64, '0'), 'hex')) };
      if (method === 'getWalletInformation') {
        let seqno = 0;
        if (state === 'active') {
          try {
            const r = await net.bc.runGetMethod(addr, 'seqno', [], { now: net.now() });
            seqno = Number(r.stackReader.readBigNumber());
          } catch (_) {
            return { wallet: false, balance: c.balance.toString(), account_state: state, last_transaction_id: last };
          }
        }
        return { wallet: true, balance: c.balance.toString(), account_state: state, seqno, last_transaction_id: last };
      }
      const s = c.accountState;
      return {
        '@type': 'raw.fullAccountState',
        balance: c.balance.toString(),
        state,
        code: s && s.type === 'active' && s.state.code ? cellB64(s.state.code) : '',
        data: s && s.type === 'active' && s.state.data ? cellB64(s.state.data) : '',
        last_transaction_id: last,
        sync_utime: net.now(),
      };
    }
    case 'runGetMethod': {
      const addr = parseAddress(params.address);
      if (params.method === undefined) throw new HttpError(400, 'method is required');
      const stack = stackIn(params.stack || []);
      const c = await net.bc.getContract(addr);
      if (accountStatus(c) !== 'active') {
        return { gas_used: 0, stack: [], exit_code: -13 };
      }
      const method = /^\d+$/.test(String(params.method)) ? Number(params.method) : String(params.method);
      try {
        const r = await net.bc.runGetMethod(addr, method, stack, { now: net.now() });
        return { '@type': 'smc.runResult', gas_used: Number(r.gasUsed), stack: stackOut(r.stack), exit_code: r.exitCode };
      } catch (e) {
        const code = typeof e.exitCode === 'number' ? e.exitCode : 1;
        return { '@type': 'smc.runResult', gas_used: 0, stack: [], exit_code: code, error: e.message };
      }
    }
    case 'sendBoc':
    case 'sendBocReturnHash': {
      if (!params.boc) throw new HttpError(400, 'boc is required');
      const { cell } = await net.sendBoc(params.boc);
      return method === 'sendBoc' ? { '@type': 'ok' } : { '@type': 'raw.extMessageInfo', hash: b64(cell.hash()) };
    }
    case 'getTransactions': {
      const addr = parseAddress(params.address);
      const limit = Number(intParam(params, 'limit', 10n));
      const lt = intParam(params, 'lt', null);
      const toLt = intParam(params, 'to_lt', 0n);
      // Newest first, starting at `lt` (inclusive) and stopping above `to_lt` (exclusive).
      let txs = net.transactionsOf(addr).slice().reverse();
      if (lt !== null) txs = txs.filter((t) => t.lt <= lt);
      txs = txs.filter((t) => t.lt > toLt).slice(0, Math.min(limit, 100));
      return txs.map((t) => txV2(t, addr));
    }
    default:
      throw new HttpError(404, `method ${method} is not served by localnet`);
  }
}

async function v3(net, route, params) {
  switch (route) {
    case 'transactions': {
      const addr = parseAddress(params.account);
      const startLt = intParam(params, 'start_lt', 0n);
      const endLt = intParam(params, 'end_lt', null);
      const limit = Number(intParam(params, 'limit', 10n));
      // toncenter's v3 refuses pages above 1000 rather than shortening them.
      if (limit > 1000) throw new HttpError(422, 'limit: ensure this value is less than or equal to 1000');
      const offset = Number(intParam(params, 'offset', 0n));
      const sort = params.sort || 'desc';
      if (sort !== 'asc' && sort !== 'desc') throw new HttpError(400, 'sort must be asc or desc');
      let txs = net.transactionsOf(addr, net.indexed()).filter((t) => t.lt >= startLt && (endLt === null || t.lt <= endLt));
      if (sort === 'desc') txs = txs.slice().reverse();
      return { transactions: txs.slice(offset, offset + limit).map((t) => txV3(t, addr)) };
    }
    case 'transactionsByMessage': {
      if (!params.msg_hash) throw new HttpError(400, 'msg_hash is required');
      const raw = String(params.msg_hash || '');
      const hex = /^[0-9a-fA-F]{64}$/.test(raw) ? raw.toLowerCase() : Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('hex');
      const found = [];
      for (const { address, tx } of net.indexed()) {
        const m = tx.inMessage;
        if (!m) continue;
        const h = beginCell().store(storeMessage(m)).endCell().hash().toString('hex');
        const hn = m.info.type === 'external-in' ? normalizedHash(m).toString('hex') : null;
        if (h === hex || hn === hex) found.push(txV3(tx, Address.parseRaw(address)));
      }
      return { transactions: found };
    }
    case 'message': {
      if (!params.boc) throw new HttpError(400, 'boc is required');
      const { cell, msg } = await net.sendBoc(params.boc);
      return { message_hash: cell.hash().toString('base64'), message_hash_norm: normalizedHash(msg).toString('base64') };
    }
    default:
      throw new HttpError(404, `v3 route ${route} is not served by localnet`);
  }
}

async function dev(net, route, params) {
  switch (route) {
    case 'faucet': {
      const addr = parseAddress(params.address);
      const amount = intParam(params, 'amount', null);
      if (amount === null || amount === 0n) throw new HttpError(400, 'amount (nanoTON) is required');
      if (amount > 10n ** 15n) throw new HttpError(400, 'faucet gives at most 1000000 TON at a time');
      return { transaction_id: await net.fund(addr, amount) };
    }
    case 'time': {
      // Move the clock forward (never back: contracts rely on time being monotonic).
      const advance = intParam(params, 'advance', 0n);
      net.timeOffset += Number(advance);
      net.save();
      return { now: net.now() };
    }
    case 'save':
      if (!net.statePath) throw new HttpError(400, 'localnet was started without --state');
      net.save();
      return { path: net.statePath };
    default:
      throw new HttpError(404, `route ${route} is not served by localnet`);
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 8 * 1024 * 1024) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

// toncenter's limits: a number of requests per second per API key, and for all keyless callers
// together. A token bucket holding one second's worth, refilled continuously.
class RateLimiter {
  constructor(anonRps, keyedRps) {
    this.anonRps = anonRps;
    this.keyedRps = keyedRps;
    this.buckets = new Map();
  }

  // Whether a request with this key (or none) may pass now.
  take(key) {
    const rps = key ? this.keyedRps : this.anonRps;
    if (!rps) return true;
    const id = key ? `key:${key}` : 'anonymous';
    const now = Date.now();
    const b = this.buckets.get(id) || { tokens: rps, at: now };
    b.tokens = Math.min(rps, b.tokens + ((now - b.at) / 1000) * rps);
    b.at = now;
    this.buckets.set(id, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

async function handle(net, req, res) {
  const url = new URL(req.url, 'http://localnet');
  let params = Object.fromEntries(url.searchParams.entries());
  if (url.pathname.startsWith('/api/') && net.limiter) {
    const key = req.headers['x-api-key'] || url.searchParams.get('api_key') || '';
    if (!net.limiter.take(key)) {
      // toncenter's wording and shape for both API versions.
      return reply(res, 429, { ok: false, error: 'Ratelimit exceed', code: 429 });
    }
  }
  if (req.method === 'POST') {
    const text = await readBody(req);
    if (text) {
      try {
        params = { ...params, ...JSON.parse(text) };
      } catch (e) {
        throw new HttpError(400, `body is not JSON: ${e.message}`);
      }
    }
  }
  const p = url.pathname.replace(/\/+$/, '');
  if (p === '/api/v2/jsonRPC') {
    const id = params.id === undefined ? 1 : params.id;
    try {
      const result = await v2(net, params.method, params.params || {});
      return reply(res, 200, { ok: true, result, id, jsonrpc: '2.0' });
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      return reply(res, status, { ok: false, error: e.message, code: status, id, jsonrpc: '2.0' });
    }
  }
  if (p.startsWith('/api/v2/')) {
    try {
      return reply(res, 200, { ok: true, result: await v2(net, p.slice('/api/v2/'.length), params) });
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      return reply(res, status, { ok: false, error: e.message, code: status });
    }
  }
  if (p.startsWith('/api/v3/')) return reply(res, 200, await v3(net, p.slice('/api/v3/'.length), params));
  if (p.startsWith('/localnet/')) return reply(res, 200, await dev(net, p.slice('/localnet/'.length), params));
  throw new HttpError(404, `no route ${p}`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const net = await Localnet.create(args.state, { blockMs: args.blockMs, indexLagMs: args.indexLagMs });
  if (args.rateLimit || args.rateLimitKeyed) net.limiter = new RateLimiter(args.rateLimit, args.rateLimitKeyed);
  const server = http.createServer((req, res) => {
    handle(net, req, res).catch((e) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (!res.headersSent) reply(res, status, { ok: false, error: e.message, code: status });
    });
  });
  // Outlive clients' idle-connection pools (reqwest keeps them 90 s) so a pooled connection is
  // not closed under a request.
  server.keepAliveTimeout = 120000;
  server.headersTimeout = 125000;
  server.listen(args.port, args.host, () => {
    const { port } = server.address();
    process.stdout.write(`COCOON_LOCALNET_URL=http://${args.host}:${port}\n`);
    process.stdout.write(`faucet ${net.faucet.address.toString()}\n`);
    if (args.blockMs) process.stdout.write(`blocks every ${args.blockMs} ms, v3 index lag ${args.indexLagMs} ms\n`);
    if (net.limiter) process.stdout.write(`rate limit ${args.rateLimit} rps without a key, ${args.rateLimitKeyed} rps with one\n`);
  });
  const stop = () => {
    net.stop();
    try {
      net.save();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (args.exitOnStdinClose) {
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.resume();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
