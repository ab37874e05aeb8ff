// The common starting point of the finding specs: a Root, an active Worker, a client Escrow with
// one open channel to that Worker.
import { SandboxContract } from '@ton/sandbox';
import { toNano } from '@ton/core';
import { KeyPair } from '@ton/crypto';
import { Escrow } from '../../../wrappers/v2/Escrow';
import { Worker } from '../../../wrappers/v2/Worker';
import { Env, Session, channelRef, createEscrow, keys, openChannel, registerWorker, setupRoot } from './fixture';

export interface Baseline {
    env: Env;
    k: KeyPair;
    worker: SandboxContract<Worker>;
    escrow: SandboxContract<Escrow>;
    channelId: bigint;
    session: () => Session;
}

export async function baseline(): Promise<Baseline> {
    const env = await setupRoot();
    const k = keys(1);
    const worker = (await registerWorker(env, env.workerOwner, k)).worker;
    const escrow = (await createEscrow(env, env.client, toNano('5'))).escrow;
    const channelId = (await openChannel(env, escrow)).channelId;
    const session = () => new Session(channelRef(env.root.address, escrow.address, channelId), worker.address, k);
    return { env, k, worker, escrow, channelId, session };
}
