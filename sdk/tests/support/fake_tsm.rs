//! A configfs-tsm report entry laid out in a tempdir as the kernel shows it after a request:
//! `provider`, `generation`, `outblob`, `auxblob` (the provider writes `inblob`).

use std::path::Path;

pub fn entry(root: &Path, name: &str, provider: &str, outblob: &[u8], auxblob: &[u8]) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("provider"), format!("{provider}\n")).unwrap();
    std::fs::write(dir.join("generation"), "1\n").unwrap();
    std::fs::write(dir.join("outblob"), outblob).unwrap();
    std::fs::write(dir.join("auxblob"), auxblob).unwrap();
    std::fs::write(dir.join("inblob"), b"").unwrap();
}
