//! Every binary takes one `--root`: which protocol it speaks is read from the chain.

use cocoon_sdk::contracts::{ContractError, RootVersion, detect_root_version};
use cocoon_sdk::units::NANO_PER_TON;
use cocoon_sdk::wallet::{OutMessage, SendOptions, WalletKind};
use cocoon_testkit::DevChain;
use cocoon_testkit::chain::funded_wallet;
use cocoon_testkit::chain_v2::DevChainV2;

#[tokio::test]
async fn a_v1_and_a_v2_root_are_told_apart_and_anything_else_is_refused() {
    let v1 = DevChain::start(&[]).await.unwrap();
    let chain = v1.localnet.client().unwrap();
    assert_eq!(
        detect_root_version(&chain, &v1.root).await.unwrap(),
        RootVersion::V1
    );
    let v2 = DevChainV2::on(v1.localnet, Default::default())
        .await
        .unwrap();
    assert_eq!(
        detect_root_version(&chain, &v2.root).await.unwrap(),
        RootVersion::V2
    );
    // An address with no code, then the same wallet deployed: code, but no Root's getters.
    let w = funded_wallet(&v2.localnet, WalletKind::V5r1, NANO_PER_TON)
        .await
        .unwrap();
    assert!(matches!(
        detect_root_version(&chain, w.address()).await,
        Err(ContractError::NotDeployed(_))
    ));
    w.send_and_confirm(
        &chain,
        &[OutMessage::transfer(w.address().clone(), 1, false)],
        &SendOptions::default(),
    )
    .await
    .unwrap();
    let e = detect_root_version(&chain, w.address()).await.unwrap_err();
    assert!(matches!(e, ContractError::Invalid { .. }), "{e}");
}
