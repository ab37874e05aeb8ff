//! The chain layer against a real localnet: faucet, wallets (V5R1, V4R2), deploy-by-transfer,
//! confirmation, seqno, forward paging, rejection, idempotent re-broadcast, snapshot reload.

use cocoon_sdk::chain::{AccountStatus, ChainApi, ChainError};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{
    OutMessage, SendOptions, Wallet, WalletError, WalletKind, generate_mnemonic,
};
use cocoon_testkit::chain::{Localnet, LocalnetConfig};

use cocoon_testkit::chain::{balance, funded_wallet, start_localnet};

#[tokio::test]
async fn wallets_deploy_send_confirm_and_page() {
    let net = start_localnet().await.unwrap();
    let chain = net.client().unwrap();
    let opts = SendOptions::default();

    for kind in [WalletKind::V5r1, WalletKind::V4r2] {
        let w = funded_wallet(&net, kind, 10 * NANO_PER_TON).await.unwrap();
        let st = chain.account(w.address()).await.unwrap();
        assert_eq!(st.balance, 10 * NANO_PER_TON);
        assert_eq!(st.status, AccountStatus::Uninitialized);
        assert_eq!(w.seqno(&chain).await.unwrap(), 0);

        let dest = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V5r1).unwrap();
        // First transfer deploys the wallet (state-init attached automatically).
        let c = w
            .send_and_confirm(
                &chain,
                &[OutMessage::transfer(
                    dest.address().clone(),
                    NANO_PER_TON,
                    false,
                )],
                &opts,
            )
            .await
            .unwrap();
        assert!(c.tx.succeeded(), "{kind:?}: {:?}", c.tx);
        assert_eq!(c.seqno, 0);
        assert_eq!(c.tx.out_msgs.len(), 1);
        assert_eq!(
            chain.account(w.address()).await.unwrap().status,
            AccountStatus::Active
        );
        assert_eq!(w.seqno(&chain).await.unwrap(), 1);
        // Exactly the value arrives (the sender pays fees separately with mode 3).
        assert_eq!(balance(&chain, dest.address()).await.unwrap(), NANO_PER_TON);

        // Second transfer: seqno 1; two messages in one external.
        let c2 = w
            .send_and_confirm(
                &chain,
                &[
                    OutMessage::transfer(dest.address().clone(), 2, false),
                    OutMessage::transfer(dest.address().clone(), 3, false),
                ],
                &opts,
            )
            .await
            .unwrap();
        assert_eq!(c2.seqno, 1);
        assert_eq!(c2.tx.out_msgs.len(), 2);
        // The receiver got exactly 1 TON, 2 and 3 nanoTON (its balance also pays storage while
        // it is undeployed, so compare the incoming values, not the balance).
        let mut received: Vec<u128> = chain
            .transactions(dest.address(), 0, 10)
            .await
            .unwrap()
            .iter()
            .filter_map(|t| t.in_msg.as_ref()?.value)
            .collect();
        received.sort();
        assert_eq!(received, vec![2, 3, NANO_PER_TON]);
        assert!(c2.tx.id.lt > c.tx.id.lt);

        // Forward paging, oldest first: faucet credit, deploy+transfer, second transfer.
        let all = chain.transactions(w.address(), 0, 100).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|p| p[0].id.lt < p[1].id.lt));
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = chain.transactions(w.address(), after, 1).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.id.lt;
            paged.extend(page);
        }
        assert_eq!(paged, all);
        assert_eq!(all[2].id, c2.tx.id);
    }
}

#[tokio::test]
async fn rejected_and_replayed_externals() {
    let net = start_localnet().await.unwrap();
    let chain = net.client().unwrap();
    let opts = SendOptions::default();
    let w = funded_wallet(&net, WalletKind::V5r1, 5 * NANO_PER_TON)
        .await
        .unwrap();
    let to = OutMessage::transfer(w.address().clone(), 1, false);
    w.send_and_confirm(&chain, std::slice::from_ref(&to), &opts)
        .await
        .unwrap();

    let seq_before = w.seqno(&chain).await.unwrap();

    // A message with a seqno far ahead is refused: typed error with the seqno, nothing executed.
    let bad = w
        .sign_external(7, u32::MAX, std::slice::from_ref(&to), false)
        .unwrap();
    match w.broadcast_and_confirm(&chain, &bad, &opts).await {
        Err(WalletError::Rejected { seqno: 7, .. }) => {}
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(w.seqno(&chain).await.unwrap(), seq_before);

    // Sending more than the balance is refused before anything is signed.
    let big = OutMessage::transfer(w.address().clone(), 1_000 * NANO_PER_TON, false);
    assert!(matches!(
        w.send_and_confirm(&chain, &[big], &opts).await,
        Err(WalletError::InsufficientBalance { .. })
    ));

    // Get-method on an account without code: typed error.
    let nobody = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V4r2).unwrap();
    assert!(matches!(
        chain.run_get_method(nobody.address(), "seqno", &[]).await,
        Err(ChainError::GetMethodFailed { .. })
    ));
}

#[tokio::test]
async fn identical_rebroadcast_is_idempotent() {
    let net = start_localnet().await.unwrap();
    let chain = net.client().unwrap();
    let opts = SendOptions::default();
    let w = funded_wallet(&net, WalletKind::V4r2, 5 * NANO_PER_TON)
        .await
        .unwrap();
    let dest = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V5r1).unwrap();
    let msg = [OutMessage::transfer(dest.address().clone(), 7, false)];
    let signed = w.sign_external(0, u32::MAX - 1, &msg, true).unwrap();
    let first = w
        .broadcast_and_confirm(&chain, &signed, &opts)
        .await
        .unwrap();
    let second = w
        .broadcast_and_confirm(&chain, &signed, &opts)
        .await
        .unwrap();
    assert_eq!(
        first.tx.id, second.tx.id,
        "the second broadcast finds the first transaction"
    );
    assert_eq!(
        chain
            .transactions_by_message(&signed.hash_norm)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(balance(&chain, dest.address()).await.unwrap(), 7);
    assert_eq!(w.seqno(&chain).await.unwrap(), 1);
}

#[tokio::test]
async fn snapshot_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("localnet.json");
    let w = Wallet::from_mnemonic(&generate_mnemonic(), WalletKind::V5r1).unwrap();
    {
        let net = Localnet::start(LocalnetConfig {
            state: Some(state.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        net.fund(w.address(), 3 * NANO_PER_TON).await.unwrap();
        let chain = net.client().unwrap();
        w.send_and_confirm(
            &chain,
            &[OutMessage::transfer(w.address().clone(), 1, false)],
            &SendOptions::default(),
        )
        .await
        .unwrap();
        net.stop().await;
    }
    assert!(state.is_file());
    let net = Localnet::start(LocalnetConfig {
        state: Some(state),
        ..Default::default()
    })
    .await
    .unwrap();
    let chain = net.client().unwrap();
    assert_eq!(w.seqno(&chain).await.unwrap(), 1);
    // Faucet credit, the external, and the self-transfer arriving back.
    assert_eq!(
        chain.transactions(w.address(), 0, 10).await.unwrap().len(),
        3
    );
    let t = net.advance_time(3600).await.unwrap();
    assert!(t > 0);
}
