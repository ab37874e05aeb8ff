//! The channel frames on the request path, each parsed once: a client's request body and a
//! worker's `channel_done` frame are parsed into the SDK's values and, in the same pass, the
//! encoded fields the relayer passes on as they are (the sealed input, each ticket's voucher,
//! the receipt) are kept as the sender wrote them.
//!
//! The forms here mirror the SDK's types field for field and parse each field with the SDK's own
//! serde functions, so every body gets the verdict (and the error message) the SDK's types give
//! it; the tests compare the two on valid and malformed input.

use cocoon_sdk::channel::serde_fields::{boc, nano};
use cocoon_sdk::channel::{ChannelRef, SignedChannelReceipt, SignedVoucher};
use cocoon_sdk::relay::bytes::base64 as base64_field;
use cocoon_sdk::relay::channel::{ChannelDone, ChannelSubmit, ChannelTicket};
use cocoon_sdk::tlb::TlbType;
use serde::Deserialize;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::de::{Deserializer, Error as _};

use super::route::{EncodedSubmit, EncodedTicket};

/// A field's value and its encoding as received.
struct Kept<T> {
    encoded: String,
    value: T,
}

/// Parses the string `encoded` with an SDK serde function, its error message unchanged.
fn keep<'de, D: Deserializer<'de>, T>(
    encoded: String,
    parse: impl FnOnce(StrDeserializer<'_, ValueError>) -> Result<T, ValueError>,
) -> Result<Kept<T>, D::Error> {
    let value = parse(StrDeserializer::new(&encoded)).map_err(D::Error::custom)?;
    Ok(Kept { encoded, value })
}

/// As [`base64_field::deserialize`], keeping the string.
fn kept_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Kept<Vec<u8>>, D::Error> {
    keep::<D, _>(String::deserialize(d)?, |s| base64_field::deserialize(s))
}

/// As [`boc::deserialize`], keeping the string.
fn kept_boc<'de, D: Deserializer<'de>, T: TlbType>(d: D) -> Result<Kept<T>, D::Error> {
    keep::<D, _>(String::deserialize(d)?, |s| boc::deserialize(s))
}

/// As [`cocoon_sdk::channel::serde_fields::opt_boc::deserialize`] (null, or what
/// [`boc::deserialize`] reads), keeping the string.
fn kept_opt_boc<'de, D: Deserializer<'de>, T: TlbType>(d: D) -> Result<Option<Kept<T>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(encoded) => keep::<D, _>(encoded, |s| boc::deserialize(s)).map(Some),
    }
}

/// [`ChannelSubmit`]'s form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct ChannelSubmit")]
struct SubmitForm {
    version: u16,
    tickets: Vec<TicketForm>,
    model_id: u32,
    max_tokens: u32,
    #[serde(deserialize_with = "kept_base64")]
    sealed_input: Kept<Vec<u8>>,
}

/// [`ChannelTicket`]'s form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "struct ChannelTicket")]
struct TicketForm {
    channel: ChannelRef,
    seq: u32,
    #[serde(default, deserialize_with = "kept_opt_boc")]
    voucher: Option<Kept<SignedVoucher>>,
}

/// A client's request body, parsed once: the request, and its encoded parts for the dispatch
/// frames. Errors exactly as `serde_json::from_slice::<ChannelSubmit>` does.
pub fn parse_submit(body: &[u8]) -> Result<(ChannelSubmit, EncodedSubmit), serde_json::Error> {
    let form: SubmitForm = serde_json::from_slice(body)?;
    let mut tickets = Vec::with_capacity(form.tickets.len());
    let mut encoded = Vec::with_capacity(form.tickets.len());
    for t in form.tickets {
        let (voucher, kept) = match t.voucher {
            Some(k) => (Some(k.value), Some(k.encoded)),
            None => (None, None),
        };
        encoded.push(EncodedTicket {
            channel: t.channel.clone(),
            voucher: kept,
        });
        tickets.push(ChannelTicket {
            channel: t.channel,
            seq: t.seq,
            voucher,
        });
    }
    let submit = ChannelSubmit {
        version: form.version,
        tickets,
        model_id: form.model_id,
        max_tokens: form.max_tokens,
        sealed_input: form.sealed_input.value,
    };
    Ok((
        submit,
        EncodedSubmit::new(encoded, form.sealed_input.encoded),
    ))
}

/// The tag of a `channel_done` frame, and no other.
#[derive(Deserialize)]
enum DoneTag {
    #[serde(rename = "channel_done")]
    ChannelDone,
}

/// The `channel_done` variant of [`cocoon_sdk::relay::worker::WorkerMessage`]'s form.
#[derive(Deserialize)]
struct DoneForm {
    #[serde(rename = "type")]
    _tag: DoneTag,
    request_id: u64,
    attempt: u32,
    chunks: u32,
    #[serde(deserialize_with = "kept_boc")]
    receipt: Kept<SignedChannelReceipt>,
    #[serde(with = "nano")]
    cost: u128,
}

/// A worker frame that is a well-formed `channel_done`, parsed once: the answer and its receipt
/// as the worker encoded it. `None` for every other frame, which the caller parses as a
/// [`cocoon_sdk::relay::worker::WorkerMessage`] (that parse gives malformed frames their
/// verdict). Workers write the tag first, so any other frame is told apart at its first field.
pub fn parse_done(text: &str) -> Option<(ChannelDone, String)> {
    let form: DoneForm = serde_json::from_str(text).ok()?;
    Some((
        ChannelDone {
            request_id: form.request_id,
            attempt: form.attempt,
            chunks: form.chunks,
            receipt: form.receipt.value,
            cost: form.cost,
        },
        form.receipt.encoded,
    ))
}

#[cfg(test)]
mod tests {
    use ::base64::Engine as _;
    use cocoon_sdk::relay::channel::ChannelChunk;
    use cocoon_sdk::relay::worker::{Heartbeat, WorkerMessage};
    use ed25519_dalek::SigningKey;
    use serde_json::{Value, json};

    use super::super::fixtures::{channel, sample_receipt, sample_submit};
    use super::*;

    fn receipt() -> SignedChannelReceipt {
        sample_receipt()
            .sign(&SigningKey::from_bytes(&[3; 32]))
            .unwrap()
    }

    /// Bodies that parse, and bodies each malformed in one way.
    fn bodies() -> Vec<(String, Vec<u8>)> {
        let good = serde_json::to_value(sample_submit()).unwrap();
        let voucher_b64 = good["tickets"][0]["voucher"].clone();
        let receipt_b64 =
            ::base64::engine::general_purpose::STANDARD.encode(receipt().to_boc().unwrap());
        type Tweak = Box<dyn Fn(&mut Value)>;
        let tweaks: Vec<(&str, Tweak)> = vec![
            ("valid", Box::new(|_| {})),
            (
                "voucher absent",
                Box::new(|v| {
                    v["tickets"][0].as_object_mut().unwrap().remove("voucher");
                }),
            ),
            ("unknown field", Box::new(|v| v["extra"] = json!(1))),
            (
                "unknown ticket field",
                Box::new(|v| v["tickets"][0]["x"] = json!(1)),
            ),
            (
                "missing field",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("model_id");
                }),
            ),
            (
                "missing ticket field",
                Box::new(|v| {
                    v["tickets"][1].as_object_mut().unwrap().remove("seq");
                }),
            ),
            (
                "sealed input not base64",
                Box::new(|v| v["sealed_input"] = json!("***")),
            ),
            (
                "sealed input a number",
                Box::new(|v| v["sealed_input"] = json!(5)),
            ),
            (
                "voucher not base64",
                Box::new(|v| v["tickets"][0]["voucher"] = json!("%%")),
            ),
            (
                "voucher a number",
                Box::new(|v| v["tickets"][0]["voucher"] = json!(7)),
            ),
            (
                "voucher not a BOC",
                Box::new(|v| v["tickets"][0]["voucher"] = json!("AAAA")),
            ),
            ("a receipt as the voucher", {
                let r = receipt_b64.clone();
                Box::new(move |v| v["tickets"][0]["voucher"] = json!(r))
            }),
            ("the voucher for the second ticket", {
                let b = voucher_b64.clone();
                Box::new(move |v| v["tickets"][1]["voucher"] = b.clone())
            }),
            ("version negative", Box::new(|v| v["version"] = json!(-1))),
            (
                "seq too big",
                Box::new(|v| v["tickets"][0]["seq"] = json!(1u64 << 40)),
            ),
            (
                "max_tokens a string",
                Box::new(|v| v["max_tokens"] = json!("64")),
            ),
            ("tickets not a list", Box::new(|v| v["tickets"] = json!({}))),
            (
                "ticket a string",
                Box::new(|v| v["tickets"][0] = json!("t")),
            ),
            (
                "bad channel address",
                Box::new(|v| v["tickets"][0]["channel"]["escrow"] = json!("0:zz")),
            ),
            ("no tickets", Box::new(|v| v["tickets"] = json!([]))),
            ("body an array", Box::new(|v| *v = json!([1, 2]))),
            ("body a string", Box::new(|v| *v = json!("x"))),
        ];
        let mut out: Vec<(String, Vec<u8>)> = tweaks
            .into_iter()
            .map(|(what, tweak)| {
                let mut v = good.clone();
                tweak(&mut v);
                (what.to_string(), serde_json::to_vec(&v).unwrap())
            })
            .collect();
        let text = serde_json::to_string(&good).unwrap();
        out.push((
            "duplicate field".into(),
            text.replacen("{", r#"{"model_id":1,"#, 1).into_bytes(),
        ));
        out.push((
            "truncated".into(),
            text.as_bytes()[..text.len() / 2].to_vec(),
        ));
        out.push(("trailing data".into(), format!("{text} x").into_bytes()));
        out.push(("empty".into(), Vec::new()));
        out.push((
            "escaped base64".into(),
            text.replacen("=\"", "\\u003d\"", 1).into_bytes(),
        ));
        out
    }

    #[test]
    fn a_body_parsed_once_gets_the_verdict_and_message_of_the_sdk_parse() {
        let mut valid = 0;
        for (what, body) in bodies() {
            let ours = parse_submit(&body);
            let sdk = serde_json::from_slice::<ChannelSubmit>(&body);
            match (&ours, &sdk) {
                (Ok((a, _)), Ok(b)) => {
                    assert_eq!(a, b, "{what}");
                    valid += 1;
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
                _ => panic!(
                    "{what}: ours {:?}, the sdk's {:?}",
                    ours.map(|_| ()),
                    sdk.map(|_| ())
                ),
            }
        }
        // Some tweaks are still valid bodies (no voucher, no tickets for serde, escapes).
        assert!(valid >= 3, "{valid}");
    }

    #[test]
    fn the_kept_parts_are_the_strings_the_client_sent() {
        let submit = sample_submit();
        let body = serde_json::to_vec(&submit).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let (parsed, encoded) = parse_submit(&body).unwrap();
        assert_eq!(parsed, submit);
        assert_eq!(encoded.sealed_input(), v["sealed_input"].as_str().unwrap());
        assert_eq!(
            encoded.voucher_of(&channel(1)),
            Some(v["tickets"][0]["voucher"].as_str())
        );
        assert_eq!(encoded.voucher_of(&channel(2)), Some(None));
        assert_eq!(encoded.voucher_of(&channel(3)), None);
    }

    #[test]
    fn a_done_frame_parsed_once_is_the_sdk_message_and_other_frames_are_left_to_it() {
        let done = ChannelDone {
            request_id: 9,
            attempt: 2,
            chunks: 1,
            receipt: receipt(),
            cost: 40_000,
        };
        let text = serde_json::to_string(&WorkerMessage::ChannelDone(done.clone())).unwrap();
        let (parsed, encoded) = parse_done(&text).unwrap();
        assert_eq!(parsed, done);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(encoded, v["receipt"].as_str().unwrap());

        // Whatever the fast path takes, the full parse takes as the same message.
        let good = v.clone();
        let mut frames: Vec<String> = Vec::new();
        for tweak in [
            json!({"extra": true}),
            json!({"type": "channel_chunk"}),
            json!({"type": "channel_don"}),
            json!({"receipt": "AAAA"}),
            json!({"receipt": 5}),
            json!({"cost": 40000}),
            json!({"cost": "-1"}),
            json!({"attempt": -1}),
            json!({"request_id": "9"}),
        ] {
            let mut f = good.clone();
            for (k, val) in tweak.as_object().unwrap() {
                f[k] = val.clone();
            }
            frames.push(f.to_string());
        }
        let mut no_tag = good.clone();
        no_tag.as_object_mut().unwrap().remove("type");
        frames.push(no_tag.to_string());
        frames.push(text.replacen("{", r#"{"attempt":1,"#, 1));
        frames.push(text.replacen("{", r#"{"type":"channel_done","#, 1));
        frames.push(format!(r#"{{"request_id":9,{}"#, &text[1..]));
        frames.push(json!(["channel_done", 9, 2, 1, v["receipt"], "40000"]).to_string());
        frames.push(
            serde_json::to_string(&WorkerMessage::ChannelChunk(ChannelChunk {
                request_id: 9,
                attempt: 2,
                seq: 0,
                data: vec![1, 2, 3],
            }))
            .unwrap(),
        );
        frames.push(
            serde_json::to_string(&WorkerMessage::Heartbeat(Heartbeat {
                load: 1,
                capacity: 4,
            }))
            .unwrap(),
        );
        let mut tag_last = good.as_object().unwrap().clone();
        let tag = tag_last.remove("type").unwrap();
        tag_last.insert("type".into(), tag);
        frames.push(Value::Object(tag_last).to_string());
        let mut taken = 0;
        for f in &frames {
            let ours = parse_done(f).map(|(d, _)| WorkerMessage::ChannelDone(d));
            let sdk = serde_json::from_str::<WorkerMessage>(f)
                .ok()
                .filter(|m| matches!(m, WorkerMessage::ChannelDone(_)));
            assert_eq!(ours, sdk, "{f}");
            taken += usize::from(ours.is_some());
        }
        // Among them valid ones: an unknown field, the array form, the tag last.
        assert!(taken >= 3, "{taken}");
    }
}
