// A real wallet v4 in the sandbox, driven by signed external messages, so that measured costs
// include what a user's wallet pays ("all-in"), not only the contracts' transactions.
import { Blockchain, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { Address, Cell, SendMode, external, internal, toNano } from '@ton/core';
import { keyPairFromSeed } from '@ton/crypto';
import { WalletContractV4 } from '@ton/ton';

export class TestWallet {
    private seqno = 0;
    private constructor(
        private readonly blockchain: Blockchain,
        private readonly wallet: SandboxContract<WalletContractV4>,
        private readonly secretKey: Buffer,
    ) {}

    get address(): Address {
        return this.wallet.address;
    }

    static async create(blockchain: Blockchain, seed: number, funder: SandboxContract<TreasuryContract>, funds = toNano('1000')) {
        const k = keyPairFromSeed(Buffer.alloc(32, seed));
        const wallet = blockchain.openContract(WalletContractV4.create({ workchain: 0, publicKey: k.publicKey }));
        await funder.send({ to: wallet.address, value: funds, bounce: false });
        const w = new TestWallet(blockchain, wallet, k.secretKey);
        // Deploy with an empty transfer so measured operations never include the deployment.
        await w.send(wallet.address, 1n, Cell.EMPTY);
        return w;
    }

    /** One signed external carrying one internal message (bounceable, fees paid separately). */
    async send(to: Address, value: bigint, body: Cell): Promise<SendMessageResult> {
        const transfer = this.wallet.createTransfer({
            seqno: this.seqno,
            secretKey: this.secretKey,
            sendMode: SendMode.PAY_GAS_SEPARATELY | SendMode.IGNORE_ERRORS,
            // The sandbox clock is fixed, not wall time: expiry must follow it.
            timeout: (this.blockchain.now ?? Math.floor(Date.now() / 1000)) + 60,
            messages: [internal({ to, value, body, bounce: true })],
        });
        const init = this.seqno === 0 ? this.wallet.init : undefined;
        this.seqno++;
        return this.blockchain.sendMessage(external({ to: this.wallet.address, init, body: transfer }));
    }
}
