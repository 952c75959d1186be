//! Unit tests of the JSON-RPC 2.0 envelope: ids, requests, responses, error objects,
//! notifications and the one-pass classification.

use serde_json::json;

use super::*;

#[test]
fn ids_read_and_write_as_the_specification_says() {
    for (text, id) in [
        ("0", Id::Num(0)),
        ("18446744073709551615", Id::Num(u64::MAX)),
        (r#""abc""#, Id::Str("abc".into())),
        (r#""a\"b""#, Id::Str("a\"b".into())),
        ("null", Id::Null),
    ] {
        assert_eq!(serde_json::from_str::<Id>(text).unwrap(), id, "{text}");
        assert_eq!(
            serde_json::from_value::<Id>(serde_json::from_str(text).unwrap()).unwrap(),
            id
        );
        assert_eq!(serde_json::to_string(&id).unwrap(), text);
    }
    for bad in ["-1", "1.5", "true", "[]", "{}"] {
        assert!(serde_json::from_str::<Id>(bad).is_err(), "{bad}");
    }
    assert_eq!(Id::Num(3), RequestId::Num(3));
    assert_ne!(Id::Str("3".into()), RequestId::Num(3));
    assert_ne!(Id::Null, RequestId::Str("null".into()));
    assert_eq!(
        Id::from(RequestId::Str("x".into())).into_request_id(),
        Some(RequestId::Str("x".into()))
    );
    assert_eq!(Id::Null.to_request_id(), None);
    assert_eq!(Id::Null.to_string(), "null");
}

#[test]
fn requests_write_version_first_and_leave_out_null_params() {
    let id = RequestId::Str("q\"1".into());
    let m = request(&id, "a/\"b\"", &json!({"x": [1, "two"]}));
    assert_eq!(
        m.as_text(),
        Some(r#"{"jsonrpc":"2.0","id":"q\"1","method":"a/\"b\"","params":{"x":[1,"two"]}}"#)
    );
    let bare = request(&RequestId::Num(2), "public/test", &Value::Null);
    assert_eq!(
        bare.as_text(),
        Some(r#"{"jsonrpc":"2.0","id":2,"method":"public/test"}"#)
    );
    assert_eq!(
        Request::new(&id, "m", json!([])).to_message().as_text(),
        Some(r#"{"jsonrpc":"2.0","id":"q\"1","method":"m","params":[]}"#)
    );
}

#[test]
fn requests_are_read_strictly() {
    let read = |text: &str| serde_json::from_str::<Request>(text);
    assert_eq!(
        read(r#"{"jsonrpc":"2.0","id":1,"method":"m"}"#).unwrap(),
        Request::new(1, "m", Value::Null)
    );
    assert!(read(r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#).is_err());
    assert!(read(r#"{"id":1,"method":"m"}"#).is_err());
    assert!(read(r#"{"jsonrpc":"2.0","method":"m"}"#).is_err());
}

#[test]
fn responses_read_leniently_and_write_one_outcome() {
    let r: Response = serde_json::from_str(r#"{"result":null}"#).unwrap();
    assert_eq!(r.id, Id::Null);
    assert_eq!(r.result, None);
    assert_eq!(r.clone().into_result().unwrap(), Value::Null);
    assert_eq!(
        r.to_json().unwrap(),
        r#"{"jsonrpc":"2.0","id":null,"result":null}"#
    );
    let e: Response = serde_json::from_str(
        r#"{"jsonrpc":"2.0","id":"a","error":{"code":3,"message":"execution reverted","data":"0x08"}}"#,
    )
    .unwrap();
    assert!(e.answers(&RequestId::Str("a".into())));
    let error = e.clone().into_result().unwrap_err();
    assert_eq!(
        error,
        ErrorObject::new(3, "execution reverted").with_data(json!("0x08"))
    );
    assert_eq!(
        e.to_json().unwrap(),
        r#"{"jsonrpc":"2.0","id":"a","error":{"code":3,"message":"execution reverted","data":"0x08"}}"#
    );
    assert!(serde_json::from_str::<Response>(r#"{"id":1,"error":{"code":"x"}}"#).is_err());
    let no_message: ErrorObject = serde_json::from_str(r#"{"code":1}"#).unwrap();
    assert_eq!(no_message.message, "");
}

#[test]
fn envelopes_classify_and_borrow() {
    #[derive(Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        channel: Cow<'a, str>,
    }
    let bytes = br#" {"jsonrpc":"2.0","method":"subscription","params":{"channel":"a.b","data":{"big":[1,2,3]}}}"#;
    let e = Envelope::<Params<'_>>::parse(bytes).unwrap();
    assert!(e.is_v2());
    assert_eq!(
        e.kind(),
        Kind::Notification {
            method: "subscription"
        }
    );
    assert!(matches!(e.method, Some(Cow::Borrowed(_))));
    assert!(matches!(
        e.params.map(|p| p.channel),
        Some(Cow::Borrowed("a.b"))
    ));

    let escaped =
        Envelope::<Params<'_>>::parse(br#"{"method":"s","params":{"channel":"a\u0062"}}"#).unwrap();
    assert!(!escaped.is_v2());
    assert!(matches!(escaped.params.map(|p| p.channel), Some(Cow::Owned(c)) if c == "ab"));

    let call =
        Envelope::<IgnoredAny>::parse(br#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#).unwrap();
    assert_eq!(
        call.kind(),
        Kind::Request {
            id: &Id::Str("x".into()),
            method: "ping"
        }
    );
    let empty = Envelope::<IgnoredAny>::parse(b"{}").unwrap();
    assert_eq!(empty.kind(), Kind::Invalid);
    assert!(empty.jsonrpc.is_none());

    let result = Envelope::<'_, IgnoredAny, Value>::parse(br#"{"id":1,"result":null}"#).unwrap();
    assert_eq!(result.kind(), Kind::Response { id: &Id::Num(1) });
    assert!(result.result.is_none(), "a null result reads as absent");

    for bad in [
        &b"[]"[..],
        b"",
        b"  7",
        b"{\"id\":-1}",
        b"{\"id\":1,",
        &[0xff, 0xfe],
    ] {
        assert!(Envelope::<IgnoredAny>::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn notifications_write_version_first() {
    let note = Notification::new("heartbeat", json!({"type": "test_request"}));
    assert_eq!(
        note.to_message().as_text(),
        Some(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#)
    );
    let read: Notification = serde_json::from_str(&note.to_json()).unwrap();
    assert_eq!(read, note);
}
