//! Reading what a server appended to its AOF: the commands of its last increment file.

use super::ServerProcess;

/// The commands of the last increment file of the server's `appendonlydir`, each as its
/// arguments.
pub fn incr_commands(server: &ServerProcess) -> Vec<Vec<String>> {
    let dir = server.dir.0.join("appendonlydir");
    let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).expect("manifest");
    let incr = manifest
        .lines()
        .rfind(|l| l.ends_with("type i"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("an increment file")
        .to_string();
    let bytes = std::fs::read(dir.join(incr)).expect("incr file");
    parse(&bytes)
}

/// RESP multibulk commands, one after another, as arguments.
pub fn parse(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let mut out = Vec::new();
    while let Some(head) = lines.next() {
        let Some(n) = head.strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let mut args = Vec::new();
        for _ in 0..n {
            lines.next();
            args.push(lines.next().unwrap_or_default().to_string());
        }
        out.push(args);
    }
    out
}
