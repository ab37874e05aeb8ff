//! HPKE sealing to one and K workers, the sealed response stream, and the commitments.

use cocoon_sdk::seal::{
    ClientSeal, EncryptionKeyPair, JobContext, SealError, SealedChunk, SealedInput,
    input_commitment, open_input, output_commitment, seal_input,
};
use proptest::prelude::*;
use tonlib_core::TonAddress;

fn job() -> JobContext {
    JobContext {
        escrow: TonAddress::new(0, [0xE5; 32].into()),
        job_id: 42,
        model_id: 7,
    }
}

fn workers(n: u8) -> Vec<EncryptionKeyPair> {
    (0..n)
        .map(|i| EncryptionKeyPair::from_seed(&[i + 1; 32]))
        .collect()
}

fn keys(workers: &[EncryptionKeyPair]) -> Vec<[u8; 32]> {
    workers.iter().map(EncryptionKeyPair::public_key).collect()
}

/// The worker side of a job: open the input, answer in `parts`, return chunks and commitment.
fn respond(
    client: &ClientSeal,
    worker: &EncryptionKeyPair,
    parts: &[&[u8]],
) -> (Vec<Vec<u8>>, [u8; 32]) {
    let mut opened = open_input(&client.sealed, worker, &job()).unwrap();
    let chunks = parts
        .iter()
        .enumerate()
        .map(|(i, p)| opened.response.seal_chunk(p, i + 1 == parts.len()).unwrap())
        .collect();
    (chunks, opened.response.output_commitment().unwrap())
}

#[test]
fn round_trip_one_recipient() {
    let w = workers(1);
    let client = seal_input(b"what is TON?", &keys(&w), &job()).unwrap();
    let opened = open_input(&client.sealed, &w[0], &job()).unwrap();
    assert_eq!(opened.plaintext, b"what is TON?");
    assert_eq!(opened.input_commitment, client.input_commitment);
    assert_eq!(client.input_commitment, input_commitment(&client.sealed));

    let (chunks, worker_commitment) = respond(&client, &w[0], &[b"The Open ", b"Network", b""]);
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    let mut answer = Vec::new();
    for c in &chunks {
        answer.extend(opener.open_chunk(c).unwrap());
    }
    assert_eq!(answer, b"The Open Network");
    let client_commitment = opener.finish().unwrap();
    assert_eq!(client_commitment, worker_commitment);
    assert_eq!(
        client_commitment,
        output_commitment(&client.secrets[0].output_commit_key(), b"The Open Network")
    );
}

#[test]
fn round_trip_k_recipients() {
    let w = workers(5);
    let client = seal_input(b"prompt for any of five", &keys(&w), &job()).unwrap();
    assert_eq!(
        SealedInput::decode(&client.sealed)
            .unwrap()
            .recipients
            .len(),
        5
    );
    for worker in &w {
        assert_eq!(
            open_input(&client.sealed, worker, &job())
                .unwrap()
                .plaintext,
            b"prompt for any of five"
        );
    }
    // The relayer fails over to worker 3; the client reads its answer without re-sealing.
    let (chunks, commitment) = respond(&client, &w[3], &[b"answer from three"]);
    let mut opener = client.response_opener(&w[3].public_key()).unwrap();
    assert_eq!(opener.open_chunk(&chunks[0]).unwrap(), b"answer from three");
    assert_eq!(opener.finish().unwrap(), commitment);
}

#[test]
fn wrong_recipient_rejected() {
    let w = workers(3);
    let client = seal_input(b"secret", &keys(&w[..2]), &job()).unwrap();
    assert_eq!(
        open_input(&client.sealed, &w[2], &job()).unwrap_err(),
        SealError::NotARecipient
    );
    assert_eq!(
        client.response_opener(&w[2].public_key()).unwrap_err(),
        SealError::NotARecipient
    );
}

#[test]
fn recipient_entry_claiming_another_key_rejected() {
    // An attacker relabels worker 0's entry with worker 1's key: worker 1 cannot unwrap it.
    let w = workers(2);
    let client = seal_input(b"secret", &keys(&w[..1]), &job()).unwrap();
    let mut parsed = SealedInput::decode(&client.sealed).unwrap();
    parsed.recipients[0].public_key = w[1].public_key();
    assert_eq!(
        open_input(&parsed.encode(), &w[1], &job()).unwrap_err(),
        SealError::KeyUnwrapFailed
    );
}

#[test]
fn sealed_input_replayed_into_another_job_rejected() {
    let w = workers(1);
    let client = seal_input(b"secret", &keys(&w), &job()).unwrap();
    for other in [
        JobContext {
            job_id: 43,
            ..job()
        },
        JobContext {
            model_id: 8,
            ..job()
        },
        JobContext {
            escrow: TonAddress::new(0, [0xE6; 32].into()),
            ..job()
        },
    ] {
        assert_eq!(
            open_input(&client.sealed, &w[0], &other).unwrap_err(),
            SealError::KeyUnwrapFailed
        );
    }
}

#[test]
fn modified_sealed_input_rejected() {
    let w = workers(2);
    let client = seal_input(b"secret prompt", &keys(&w), &job()).unwrap();
    let mut ct = client.sealed.clone();
    let last = ct.len() - 1;
    ct[last] ^= 1;
    assert_eq!(
        open_input(&ct, &w[0], &job()).unwrap_err(),
        SealError::ContentAuthFailed
    );
    // Dropping worker 1 from the header changes the content AAD: worker 0 notices.
    let mut parsed = SealedInput::decode(&client.sealed).unwrap();
    parsed.recipients.truncate(1);
    assert_eq!(
        open_input(&parsed.encode(), &w[0], &job()).unwrap_err(),
        SealError::ContentAuthFailed
    );
}

#[test]
fn modified_chunk_rejected() {
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (mut chunks, _) = respond(&client, &w[0], &[b"hello", b"world"]);
    let last = chunks[1].len() - 1;
    chunks[1][last] ^= 0x80;
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    opener.open_chunk(&chunks[0]).unwrap();
    assert_eq!(
        opener.open_chunk(&chunks[1]).unwrap_err(),
        SealError::ChunkAuthFailed { seq: 1 }
    );
}

#[test]
fn dropped_chunk_rejected() {
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"a", b"b", b"c"]);
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    opener.open_chunk(&chunks[0]).unwrap();
    assert_eq!(
        opener.open_chunk(&chunks[2]).unwrap_err(),
        SealError::ChunkOutOfOrder {
            expected: 1,
            got: 2
        }
    );
}

#[test]
fn reordered_chunks_rejected() {
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"a", b"b", b"c"]);
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    assert_eq!(
        opener.open_chunk(&chunks[1]).unwrap_err(),
        SealError::ChunkOutOfOrder {
            expected: 0,
            got: 1
        }
    );
}

#[test]
fn renumbered_chunk_rejected() {
    // Rewriting the sequence number to the expected one does not help: it is authenticated.
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"a", b"b"]);
    let mut moved = SealedChunk::decode(&chunks[1]).unwrap();
    moved.seq = 0;
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    assert_eq!(
        opener.open_chunk(&moved.encode()).unwrap_err(),
        SealError::ChunkAuthFailed { seq: 0 }
    );
}

#[test]
fn replayed_chunk_rejected() {
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"a", b"b"]);
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    opener.open_chunk(&chunks[0]).unwrap();
    assert_eq!(
        opener.open_chunk(&chunks[0]).unwrap_err(),
        SealError::ChunkReplayed {
            expected: 1,
            got: 0
        }
    );
}

#[test]
fn truncated_stream_rejected() {
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"a", b"b"]);
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    opener.open_chunk(&chunks[0]).unwrap();
    assert_eq!(opener.finish().unwrap_err(), SealError::StreamTruncated);
}

#[test]
fn early_final_flag_rejected() {
    // Marking a middle chunk final (to cut the answer short) breaks its authentication.
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"a", b"b"]);
    let mut cut = SealedChunk::decode(&chunks[0]).unwrap();
    cut.is_final = true;
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    assert_eq!(
        opener.open_chunk(&cut.encode()).unwrap_err(),
        SealError::ChunkAuthFailed { seq: 0 }
    );
}

#[test]
fn chunk_after_final_rejected() {
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"only"]);
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    opener.open_chunk(&chunks[0]).unwrap();
    assert_eq!(
        opener.open_chunk(&chunks[0]).unwrap_err(),
        SealError::ChunkAfterFinal
    );
    let mut opened = open_input(&client.sealed, &w[0], &job()).unwrap();
    opened.response.seal_chunk(b"x", true).unwrap();
    assert_eq!(
        opened.response.seal_chunk(b"y", false).unwrap_err(),
        SealError::StreamFinished
    );
}

#[test]
fn response_of_one_worker_does_not_open_as_another() {
    let w = workers(2);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (chunks, _) = respond(&client, &w[0], &[b"from zero"]);
    let mut opener = client.response_opener(&w[1].public_key()).unwrap();
    assert_eq!(
        opener.open_chunk(&chunks[0]).unwrap_err(),
        SealError::ChunkAuthFailed { seq: 0 }
    );
}

#[test]
fn output_commitment_binds_the_answer_and_hides_it() {
    let w = workers(2);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (_, c1) = respond(&client, &w[0], &[b"yes"]);
    let (_, c2) = respond(&client, &w[0], &[b"no"]);
    assert_ne!(c1, c2);
    // Another worker's context (same answer) gives another value: the key is the secret.
    let (_, c3) = respond(&client, &w[1], &[b"yes"]);
    assert_ne!(c1, c3);
    // Chunk boundaries do not matter.
    let (_, c4) = respond(&client, &w[0], &[b"y", b"es"]);
    assert_eq!(c1, c4);
}

#[test]
fn seal_refuses_bad_recipient_lists() {
    assert_eq!(
        seal_input(b"q", &[], &job()).unwrap_err(),
        SealError::BadRecipientCount(0)
    );
    let w = workers(1);
    let k = w[0].public_key();
    assert_eq!(
        seal_input(b"q", &[k, k], &job()).unwrap_err(),
        SealError::DuplicateRecipient
    );
    assert_eq!(
        seal_input(b"q", &vec![[9; 32]; 17], &job()).unwrap_err(),
        SealError::BadRecipientCount(17)
    );
    let bad_job = JobContext {
        escrow: TonAddress::new(1000, [0; 32].into()),
        ..job()
    };
    assert_eq!(
        seal_input(b"q", &[k], &bad_job).unwrap_err(),
        SealError::WorkchainOutOfRange(1000)
    );
}

#[test]
fn sealed_input_decode_rejects_bad_bytes() {
    let w = workers(2);
    let sealed = seal_input(b"q", &keys(&w), &job()).unwrap().sealed;
    let mut trailing = sealed.clone();
    trailing.push(0);
    assert_eq!(
        SealedInput::decode(&trailing).unwrap_err(),
        SealError::TrailingBytes { count: 1 }
    );
    assert!(matches!(
        SealedInput::decode(&sealed[..sealed.len() - 1]).unwrap_err(),
        SealError::Truncated { .. }
    ));
    let mut version = sealed.clone();
    version[0] = 2;
    assert_eq!(
        SealedInput::decode(&version).unwrap_err(),
        SealError::UnsupportedVersion(2)
    );
    let mut suite = sealed.clone();
    suite[2] = 2;
    assert_eq!(
        SealedInput::decode(&suite).unwrap_err(),
        SealError::UnsupportedSuite(2)
    );
    let mut zero = sealed.clone();
    zero[3] = 0;
    assert_eq!(
        SealedInput::decode(&zero).unwrap_err(),
        SealError::BadRecipientCount(0)
    );
    let mut dup = SealedInput::decode(&sealed).unwrap();
    dup.recipients[1].public_key = dup.recipients[0].public_key;
    assert_eq!(
        SealedInput::decode(&dup.encode()).unwrap_err(),
        SealError::DuplicateRecipient
    );
}

#[test]
fn chunk_decode_rejects_bad_bytes() {
    assert!(matches!(
        SealedChunk::decode(&[1, 0, 0]).unwrap_err(),
        SealError::Truncated { .. }
    ));
    let chunk = SealedChunk {
        stream_id: [0; 16],
        seq: 3,
        is_final: false,
        ciphertext: vec![0; 20],
    }
    .encode();
    let mut flags = chunk.clone();
    flags[1] = 0x02;
    assert!(matches!(
        SealedChunk::decode(&flags).unwrap_err(),
        SealError::BadLength {
            field: "chunk flags",
            ..
        }
    ));
    let mut trailing = chunk.clone();
    trailing.push(1);
    assert_eq!(
        SealedChunk::decode(&trailing).unwrap_err(),
        SealError::TrailingBytes { count: 1 }
    );
    let short = SealedChunk {
        stream_id: [0; 16],
        seq: 0,
        is_final: true,
        ciphertext: vec![0; 15],
    }
    .encode();
    assert!(matches!(
        SealedChunk::decode(&short).unwrap_err(),
        SealError::BadLength { .. }
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn seal_open_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..2048), k in 1u8..4) {
        let w = workers(k);
        let client = seal_input(&plaintext, &keys(&w), &job()).unwrap();
        let parsed = SealedInput::decode(&client.sealed).unwrap();
        prop_assert_eq!(parsed.encode(), client.sealed.clone());
        for worker in &w {
            prop_assert_eq!(&open_input(&client.sealed, worker, &job()).unwrap().plaintext, &plaintext);
        }
    }

    #[test]
    fn sealed_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SealedInput::decode(&bytes);
        let _ = SealedChunk::decode(&bytes);
    }
}

#[test]
fn chunk_of_another_response_rejected() {
    // The relayer makes the worker answer the same input twice and splices the two streams.
    let w = workers(1);
    let client = seal_input(b"q", &keys(&w), &job()).unwrap();
    let (first, _) = respond(&client, &w[0], &[b"a", b"b"]);
    let (second, _) = respond(&client, &w[0], &[b"a", b"b"]);
    assert_ne!(
        first[0], second[0],
        "two openings must not reuse a key and nonce"
    );
    let mut opener = client.response_opener(&w[0].public_key()).unwrap();
    opener.open_chunk(&first[0]).unwrap();
    assert_eq!(
        opener.open_chunk(&second[1]).unwrap_err(),
        SealError::ChunkFromOtherStream
    );
    assert_eq!(opener.open_chunk(&first[1]).unwrap(), b"b");
    opener.finish().unwrap();
}
