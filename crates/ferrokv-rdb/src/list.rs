//! Lists: written as QUICKLIST_2 (type 18), node by node; read from every list type any
//! version wrote (1 linked list, 10 ziplist, 14 quicklist of ziplists, 18 quicklist of
//! listpacks), keeping the saved node boundaries as Valkey does.

use std::io::Read;

use ferrokv_store::types::list::SavedNode;
use ferrokv_store::types::listpack::{Elem, Listpack};
use ferrokv_store::{ListValue, Value};

use crate::decode::Decoder;
use crate::encode::Encoder;
use crate::error::{RdbError, RdbErrorKind, RdbResult};
use crate::format::kind;
use crate::value::{ReadOptions, bounded, read_blob};
use crate::ziplist;

/// Quicklist node containers.
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// Writes the type byte and payload: the node count, then per node its container and its
/// listpack blob (or, for a plain node, its one element). A node held compressed in memory
/// is saved LZF-compressed, others when `rdbcompression` is on and compression pays.
pub fn write_list(e: &mut Encoder, list: &ListValue) {
    e.u8(kind::LIST_QUICKLIST_2);
    let nodes = list.saved_nodes();
    e.length(nodes.len() as u64);
    for node in nodes {
        match node {
            SavedNode::Plain(lp) => {
                e.length(CONTAINER_PLAIN);
                let element = lp.first().map(|off| lp.get(off).to_vec());
                e.string(&element.unwrap_or_default());
            }
            SavedNode::Packed { lp, compressed } => {
                e.length(CONTAINER_PACKED);
                let blob = lp.to_blob();
                if compressed {
                    e.string_prefer_lzf(&blob);
                } else {
                    e.string(&blob);
                }
            }
        }
    }
}

/// Reads a list of any list type byte.
pub fn read_list<R: Read>(
    d: &mut Decoder<R>,
    type_byte: u8,
    options: &ReadOptions,
) -> RdbResult<Value> {
    let limits = options.list;
    let list = match type_byte {
        kind::LIST => {
            let count = d.count()?;
            let mut elements = Vec::with_capacity(bounded(count));
            for _ in 0..count {
                elements.push(d.string()?);
            }
            let mut list = ListValue::new();
            list.push_all(&elements, false, limits);
            list
        }
        kind::LIST_ZIPLIST => ListValue::from_saved_nodes(vec![read_ziplist_node(d)?], limits),
        kind::LIST_QUICKLIST => {
            let count = d.count()?;
            let mut nodes = Vec::with_capacity(bounded(count));
            for _ in 0..count {
                nodes.push(read_ziplist_node(d)?);
            }
            ListValue::from_saved_nodes(nodes, limits)
        }
        kind::LIST_QUICKLIST_2 => {
            let count = d.count()?;
            let mut nodes = Vec::with_capacity(bounded(count));
            for _ in 0..count {
                let at = d.offset();
                match d.length()? {
                    CONTAINER_PLAIN => {
                        let mut lp = Listpack::new();
                        lp.push_back(&d.string()?);
                        nodes.push(lp);
                    }
                    CONTAINER_PACKED => {
                        let (at, blob) = read_blob(d)?;
                        let lp = Listpack::from_blob(&blob)
                            .ok_or_else(|| RdbError::corrupt(at, "invalid listpack"))?;
                        nodes.push(lp);
                    }
                    _ => return Err(RdbError::corrupt(at, "unknown quicklist container")),
                }
            }
            ListValue::from_saved_nodes(nodes, limits)
        }
        other => return Err(d.error(RdbErrorKind::UnknownType(other))),
    };
    if list.is_empty() {
        return Err(d.error(RdbErrorKind::EmptyKey));
    }
    Ok(Value::List(list))
}

/// One ziplist blob as a listpack node.
fn read_ziplist_node<R: Read>(d: &mut Decoder<R>) -> RdbResult<Listpack> {
    let (at, blob) = read_blob(d)?;
    let entries =
        ziplist::entries(&blob).ok_or_else(|| RdbError::corrupt(at, "invalid ziplist"))?;
    let mut lp = Listpack::new();
    for entry in entries {
        match entry {
            Elem::Int(n) => lp.push_back(itoa::Buffer::new().format(n).as_bytes()),
            Elem::Str(s) => lp.push_back(s),
        }
    }
    Ok(lp)
}
