//! `DEBUG PROTOCOL <type>`: one reply of each RESP type, so a client library can test its
//! parser against the server (Valkey's test suite and client suites use it). The payloads
//! are Valkey's, byte for byte.

use crate::context::{CmdError, CmdResult, Ctx};

pub fn reply(ctx: &mut Ctx, kind: &[u8]) -> CmdResult {
    let reply = &mut *ctx.reply;
    match kind.to_ascii_lowercase().as_slice() {
        b"string" => reply.bulk(b"Hello World"),
        b"integer" => reply.int(12345),
        b"double" => reply.double_text("3.141"),
        b"bignum" => {
            let digits = b"1234567999999999999999999999999999999";
            if reply.is_resp3() {
                reply.raw(b"(");
                reply.raw(digits);
                reply.raw(b"\r\n");
            } else {
                reply.bulk(digits);
            }
        }
        b"null" => reply.null(),
        b"array" | b"set" => {
            if kind.eq_ignore_ascii_case(b"set") {
                reply.set_len(3);
            } else {
                reply.array_len(3);
            }
            for n in 0..3 {
                reply.int(n);
            }
        }
        b"map" => {
            reply.map_len(3);
            for n in 0..3 {
                reply.int(n);
                reply.boolean(n == 1);
            }
        }
        b"attrib" => {
            if reply.is_resp3() {
                // An attribute frame: metadata the client may read or skip, then the reply.
                reply.raw(b"|1\r\n");
                reply.bulk(b"key-popularity");
                reply.array_len(2);
                reply.bulk(b"key:123");
                reply.int(90);
            }
            reply.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !reply.is_resp3() {
                return Err(CmdError::err("RESP2 is not supported by this command"));
            }
            reply.bulk(b"Some real reply following the push reply");
            reply.push_len(2);
            reply.bulk(b"server-cpu-usage");
            reply.int(42);
        }
        b"verbatim" => reply.verbatim("txt", b"This is a verbatim\nstring"),
        b"true" => reply.boolean(true),
        b"false" => reply.boolean(false),
        _ => {
            return Err(CmdError::err(
                "Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ));
        }
    }
    Ok(())
}
