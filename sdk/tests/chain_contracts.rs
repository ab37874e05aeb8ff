//! The contract clients against the real compiled contracts on localnet: deploy Root, govern it,
//! register a worker with a stake, deposit into an escrow, open a job, expire it, withdraw,
//! unbond and withdraw the stake — and the contracts' refusals as typed errors.

use std::collections::{BTreeMap, BTreeSet};

use cocoon_sdk::chain::{AccountStatus, ChainApi};
use cocoon_sdk::contracts::{
    ContractError, EscrowClient, OpenJobArgs, RootClient, WorkerClient, escrow_address, exit,
    worker_address,
};
use cocoon_sdk::messages::records::{
    Attestation, RootParams, RootPolicy, WorkerRecord, tee_kind, worker_status,
};
use cocoon_sdk::receipt::{ReceiptBody, ReceiptCommitments, ReceiptHashes};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{SendOptions, WalletKind};

use cocoon_testkit::chain::{balance, funded_wallet, start_localnet};

const GRACE: u32 = 30;
const UNBONDING: u32 = 100;

#[tokio::test]
async fn full_lifecycle_on_localnet() {
    let net = start_localnet().await.unwrap();
    let chain = net.client().unwrap();
    let opts = SendOptions::default();
    let owner = funded_wallet(&net, WalletKind::V5r1, 100 * NANO_PER_TON)
        .await
        .unwrap();
    let gpu = funded_wallet(&net, WalletKind::V5r1, 100 * NANO_PER_TON)
        .await
        .unwrap();
    let client = funded_wallet(&net, WalletKind::V4r2, 100 * NANO_PER_TON)
        .await
        .unwrap();
    let relayer = funded_wallet(&net, WalletKind::V5r1, NANO_PER_TON)
        .await
        .unwrap();

    // --- deploy Root
    let params = RootParams {
        min_stake: 10 * NANO_PER_TON,
        unbonding_delay: UNBONDING,
        grace_period: GRACE,
        relayer_fee_cap_bps: 1000,
        protocol_fee_bps: 100,
        reporter_reward_bps: 2000,
        treasury: owner.address().clone(),
    };
    let policy = RootPolicy {
        allowed_kinds: 1 << tee_kind::SIMULATED,
        measurements: BTreeSet::new(),
    };
    let data = RootClient::<cocoon_sdk::chain::TonCenterClient>::initial_data(
        owner.address().clone(),
        params.clone(),
        policy,
        BTreeMap::new(),
    )
    .unwrap();
    let (root, _) = RootClient::deploy(&chain, &owner, &data, NANO_PER_TON / 10, &opts)
        .await
        .unwrap();
    assert_eq!(
        chain.account(root.address()).await.unwrap().status,
        AccountStatus::Active
    );
    assert_eq!(root.owner().await.unwrap().owner, *owner.address());
    assert_eq!(root.params().await.unwrap(), params);

    // --- governance: a measurement and a model; a stranger is refused with NotOwner
    let measurement = [0x4d; 32];
    let model_hash = [0xa1; 32];
    root.add_measurement(&owner, measurement, &opts)
        .await
        .unwrap();
    root.set_model(&owner, 1, model_hash, &opts).await.unwrap();
    assert!(root.is_measurement_allowed(&measurement).await.unwrap());
    assert!(!root.is_measurement_allowed(&[0; 32]).await.unwrap());
    assert_eq!(
        root.policy().await.unwrap().measurements,
        BTreeSet::from([measurement])
    );
    assert_eq!(root.model(1).await.unwrap(), Some(model_hash));
    assert_eq!(root.model(2).await.unwrap(), None);
    assert_eq!(
        root.models().await.unwrap(),
        BTreeMap::from([(1, model_hash)])
    );
    match root.set_model(&gpu, 9, [0; 32], &opts).await {
        Err(ContractError::Failed {
            exit_code, name, ..
        }) => {
            assert_eq!(exit_code, exit::NOT_OWNER);
            assert_eq!(name, Some("NotOwner"));
        }
        other => panic!("expected NotOwner, got {other:?}"),
    }

    // --- addresses derived locally equal Root's getters
    let (wcode, ecode) = root.codes().await.unwrap();
    assert_eq!(
        worker_address(root.address(), gpu.address(), &wcode).unwrap(),
        root.worker_address(gpu.address()).await.unwrap()
    );
    assert_eq!(
        escrow_address(root.address(), client.address(), &ecode).unwrap(),
        root.escrow_address(client.address()).await.unwrap()
    );

    // --- register a worker with a stake (below the minimum is refused first)
    let worker = WorkerClient::for_owner(&chain, root.address(), gpu.address())
        .await
        .unwrap();
    let receipt_key = ed25519_dalek::SigningKey::from_bytes(&[0x07; 32]);
    let record = WorkerRecord {
        receipt_key: receipt_key.verifying_key().to_bytes(),
        encryption_key: [0x22; 32],
        price_in: 1000,
        price_out: 3000,
        models: BTreeSet::from([1]),
        attestation: Attestation {
            kind: tee_kind::SIMULATED,
            measurement,
            evidence_hash: [0xe5; 32],
            expires_at: u32::MAX,
        },
    };
    match worker
        .register(&gpu, 10 * NANO_PER_TON - 1, record.clone(), &opts)
        .await
    {
        Err(ContractError::Failed { exit_code, .. }) => assert_eq!(exit_code, exit::STAKE_TOO_LOW),
        other => panic!("expected StakeTooLow, got {other:?}"),
    }
    worker
        .register(&gpu, 10 * NANO_PER_TON, record.clone(), &opts)
        .await
        .unwrap();
    let st = worker.state().await.unwrap();
    assert_eq!(
        (st.status, st.stake, st.earned),
        (worker_status::ACTIVE, 10 * NANO_PER_TON, 0)
    );
    let rec = worker.record().await.unwrap();
    assert_eq!(
        (rec.receipt_key, rec.price_in, rec.price_out, rec.kind),
        (
            receipt_key.verifying_key().to_bytes(),
            1000,
            3000,
            tee_kind::SIMULATED
        )
    );
    assert_eq!(rec.models, BTreeSet::from([1]));
    assert_eq!(worker.config().await.unwrap().unbonding_delay, UNBONDING);

    // --- escrow: deposit (deploys through Root), deposit again (direct)
    let escrow = EscrowClient::for_owner(&chain, root.address(), client.address())
        .await
        .unwrap();
    escrow
        .deposit(&client, 5 * NANO_PER_TON, &opts)
        .await
        .unwrap();
    escrow
        .deposit(&client, 2 * NANO_PER_TON, &opts)
        .await
        .unwrap();
    let s0 = escrow.state().await.unwrap();
    assert!(s0.initialized);
    // 7 TON deposited, less the gas of the deposits and the storage reserve.
    assert!(
        s0.free > 7 * NANO_PER_TON - NANO_PER_TON / 10 && s0.free < 7 * NANO_PER_TON,
        "free {}",
        s0.free
    );
    assert_eq!(escrow.config().await.unwrap().grace_period, GRACE);

    // --- open a job: locks max_cost
    let now = chain.account(escrow.address()).await.unwrap().sync_utime as u32;
    let job = OpenJobArgs {
        job_id: 1,
        model_id: 1,
        max_cost: NANO_PER_TON,
        deadline: now + 60,
        relayer_fee_bps: 500,
        input_commitment: [0x33; 32],
        relayer: relayer.address().clone(),
        worker: Some(worker.address().clone()),
    };
    escrow.open_job(&client, job.clone(), &opts).await.unwrap();
    let s1 = escrow.state().await.unwrap();
    assert_eq!(s1.locked, NANO_PER_TON);
    assert_eq!(s1.last_job_id, 1);
    let jv = escrow.job(1).await.unwrap().expect("job 1 open");
    assert_eq!(
        (jv.max_cost, jv.deadline, jv.relayer_fee_bps),
        (NANO_PER_TON, now + 60, 500)
    );
    assert_eq!(jv.worker.as_ref(), Some(worker.address()));
    // Same id again: JobIdNotIncreasing.
    match escrow.open_job(&client, job.clone(), &opts).await {
        Err(ContractError::Failed { exit_code, .. }) => {
            assert_eq!(exit_code, exit::JOB_ID_NOT_INCREASING)
        }
        other => panic!("expected JobIdNotIncreasing, got {other:?}"),
    }

    // --- expire: refused before deadline + grace, accepted after (by anyone)
    match escrow.expire(&relayer, 1, &opts).await {
        Err(ContractError::Failed { exit_code, .. }) => {
            assert_eq!(exit_code, exit::JOB_NOT_EXPIRED)
        }
        other => panic!("expected JobNotExpired, got {other:?}"),
    }
    net.advance_time(60 + u64::from(GRACE) + 1).await.unwrap();
    escrow.expire(&relayer, 1, &opts).await.unwrap();
    assert_eq!(escrow.job(1).await.unwrap(), None);
    let s2 = escrow.state().await.unwrap();
    assert_eq!(s2.locked, 0);

    // --- settle a job: a receipt signed by the worker's key, submitted by the relayer
    let now = chain.account(escrow.address()).await.unwrap().sync_utime as u32;
    let input = [0x44; 32];
    let job2 = OpenJobArgs {
        job_id: 2,
        deadline: now + 600,
        input_commitment: input,
        ..job.clone()
    };
    escrow.open_job(&client, job2, &opts).await.unwrap();
    let cost = 100 * 1000 + 200 * 3000;
    let body = ReceiptBody {
        escrow: escrow.address().clone(),
        job_id: 2,
        worker: worker.address().clone(),
        model_id: 1,
        tokens_in: 100,
        tokens_out: 200,
        cost,
        time: now,
        hashes: ReceiptHashes {
            weights_hash: [0x77; 32],
            evidence_hash: [0xe5; 32],
        },
        commitments: ReceiptCommitments {
            input_commitment: input,
            output_commitment: [0x55; 32],
        },
    };
    let signed = body.sign(&receipt_key).unwrap();
    worker
        .submit_receipts(&relayer, vec![signed.clone()], &opts)
        .await
        .unwrap();
    assert_eq!(escrow.job(2).await.unwrap(), None, "job 2 settled");
    let earned = worker.state().await.unwrap().earned;
    assert!(earned > 0 && earned <= cost, "earned {earned}");
    // The same receipt again: the Escrow refuses the settlement (the job is no longer open),
    // reported as a typed failure; nothing more is paid.
    match worker.submit_receipts(&relayer, vec![signed], &opts).await {
        Err(ContractError::Failed { exit_code, .. }) => assert_eq!(exit_code, exit::JOB_NOT_FOUND),
        other => panic!("expected JobNotFound, got {other:?}"),
    }
    assert_eq!(worker.state().await.unwrap().earned, earned);

    // --- withdraw: more than free is refused; 3 TON arrives at the owner
    match escrow.withdraw(&client, 1000 * NANO_PER_TON, &opts).await {
        Err(ContractError::Failed { exit_code, .. }) => {
            assert_eq!(exit_code, exit::INSUFFICIENT_FREE_BALANCE)
        }
        other => panic!("expected InsufficientFreeBalance, got {other:?}"),
    }
    let s3 = escrow.state().await.unwrap();
    let before = balance(&chain, client.address()).await.unwrap();
    escrow
        .withdraw(&client, 3 * NANO_PER_TON, &opts)
        .await
        .unwrap();
    let after = balance(&chain, client.address()).await.unwrap();
    assert!(
        after > before + 3 * NANO_PER_TON - NANO_PER_TON / 10,
        "client got {} nanoTON",
        after - before
    );
    assert!(
        escrow.state().await.unwrap().free
            <= s3.free - 3 * NANO_PER_TON + cocoon_sdk::contracts::OP_GAS
    );

    // --- unbond, withdraw too early (StakeLocked), wait, withdraw
    worker.unbond(&gpu, &opts).await.unwrap();
    let st = worker.state().await.unwrap();
    assert_eq!(st.status, worker_status::UNBONDING);
    match worker.withdraw_stake(&gpu, &opts).await {
        Err(ContractError::Failed { exit_code, .. }) => assert_eq!(exit_code, exit::STAKE_LOCKED),
        other => panic!("expected StakeLocked, got {other:?}"),
    }
    net.advance_time(u64::from(UNBONDING) + 1).await.unwrap();
    let before = balance(&chain, gpu.address()).await.unwrap();
    worker.withdraw_stake(&gpu, &opts).await.unwrap();
    assert!(balance(&chain, gpu.address()).await.unwrap() > before + 9 * NANO_PER_TON);
    assert_eq!(worker.state().await.unwrap().status, worker_status::EXITED);
}
