//! The artifact store on a local folder: streamed writes, reads, listings and deletes, and that
//! nothing outside the root can be reached.

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use kiln_artifacts::{ArtifactPath, ArtifactStore, FileInfo, MAX_UPLOAD_PARTS, UploadPart};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-artifacts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn p(s: &str) -> ArtifactPath {
    ArtifactPath::parse(s).unwrap()
}

async fn put(store: &ArtifactStore, path: &str, chunks: Vec<Vec<u8>>) -> u64 {
    let body = stream::iter(chunks.into_iter().map(|c| Ok::<_, std::io::Error>(Bytes::from(c))));
    store.put(&p(path), body).await.unwrap()
}

async fn read(store: &ArtifactStore, path: &str) -> Vec<u8> {
    let (size, body) = store.get(&p(path)).await.unwrap();
    let bytes: Vec<Bytes> = body.try_collect().await.unwrap();
    let all = bytes.concat();
    assert_eq!(all.len() as u64, size);
    all
}

#[tokio::test]
async fn streams_in_and_out() {
    let dir = temp_dir("stream");
    let store = ArtifactStore::open(dir.join("root").to_str().unwrap()).unwrap();
    let chunks: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1 << 20]).collect();
    let expected = chunks.concat();
    assert_eq!(put(&store, "1/run/artifacts/big.bin", chunks).await, expected.len() as u64);
    assert_eq!(read(&store, "1/run/artifacts/big.bin").await, expected);
    put(&store, "1/run/artifacts/big.bin", vec![b"small".to_vec()]).await;
    assert_eq!(read(&store, "1/run/artifacts/big.bin").await, b"small", "an upload replaces the file");
    put(&store, "1/run/artifacts/empty", vec![]).await;
    assert_eq!(read(&store, "1/run/artifacts/empty").await, b"");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn lists_and_deletes_folders() {
    let dir = temp_dir("list");
    let store = ArtifactStore::open(dir.to_str().unwrap()).unwrap();
    put(&store, "r/a.txt", vec![b"hello".to_vec()]).await;
    put(&store, "r/sub/b.txt", vec![b"x".to_vec()]).await;
    put(&store, "r/with space é.txt", vec![b"y".to_vec()]).await;
    let listing = store.list(&p("r")).await.unwrap();
    assert_eq!(
        listing,
        vec![
            FileInfo { path: "a.txt".into(), is_dir: false, file_size: Some(5) },
            FileInfo { path: "sub".into(), is_dir: true, file_size: None },
            FileInfo { path: "with space é.txt".into(), is_dir: false, file_size: Some(1) },
        ]
    );
    assert!(dir.join("r/with space é.txt").exists(), "names are kept as given on disk");
    put(&store, "r/100%.txt", vec![b"z".to_vec()]).await;
    assert!(store.list(&p("r")).await.unwrap().iter().any(|f| f.path == "100%.txt"));
    assert!(store.list(&p("missing")).await.unwrap().is_empty());
    let refused = |path: &'static str| {
        let store = store.clone();
        async move { store.put(&p(path), stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"z"))])).await }
    };
    assert!(refused("r/sub").await.is_err(), "a file cannot replace a folder");
    assert!(refused("r/a.txt/inner").await.is_err(), "a file cannot sit below a file");
    assert_eq!(std::fs::read_dir(dir.join("r/sub")).unwrap().count(), 1, "nothing was left behind");
    store.delete(&p("r/sub")).await.unwrap();
    assert!(!dir.join("r/sub/b.txt").exists());
    assert!(store.get(&p("r/sub/b.txt")).await.is_err());
    assert!(store.delete(&p("r/nothing")).await.is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_broken_upload_leaves_nothing() {
    let dir = temp_dir("broken");
    let store = ArtifactStore::open(dir.to_str().unwrap()).unwrap();
    let body = stream::iter(vec![Ok(Bytes::from_static(b"part")), Err(std::io::Error::other("connection reset"))]);
    assert!(store.put(&p("x/file.bin"), body).await.is_err());
    assert!(store.get(&p("x/file.bin")).await.is_err());
    assert!(!dir.join("x/file.bin").exists());
    let leftovers = |dir: &std::path::Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers(&dir.join("x")), 0, "no temporary file is left");

    // An upload abandoned mid-stream (the client went away) leaves nothing either.
    let endless = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 9 << 20]))]).chain(stream::pending());
    let abandoned = tokio::time::timeout(std::time::Duration::from_millis(300), store.put(&p("y/file.bin"), endless)).await;
    assert!(abandoned.is_err(), "the upload was still waiting for data");
    assert_eq!(leftovers(&dir.join("y")), 0, "an abandoned upload's temporary file is removed");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn paths_cannot_leave_the_root() {
    for bad in ["../outside", "a/../../outside", "/etc/passwd", "%2e%2e/x", "a\\..\\b", "a\0b"] {
        assert!(ArtifactPath::parse(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn multipart_uploads_assemble_in_order() {
    let dir = temp_dir("multipart");
    let store = ArtifactStore::open(dir.to_str().unwrap()).unwrap();
    let dest = p("1/run/artifacts/model.bin");
    let id = store.create_upload(&dest, 3).await.unwrap();
    let body = |b: &'static [u8]| stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b))]);
    let e3 = store.put_part(&id, 3, body(b"ccc")).await.unwrap();
    let e1 = store.put_part(&id, 1, body(b"aaaa")).await.unwrap();
    let e2 = store.put_part(&id, 2, body(b"b")).await.unwrap();
    assert!(store.put_part(&id, 4, body(b"x")).await.is_err(), "a part past the last");
    assert!(store.put_part(&id, 0, body(b"x")).await.is_err(), "parts count from 1");
    assert!(store.get(&dest).await.is_err(), "nothing is visible before completion");
    assert!(store.list(&p("")).await.unwrap().iter().all(|f| !f.path.starts_with(".kiln")), "the uploads folder is hidden");
    assert!(ArtifactPath::parse(".kiln-uploads/x").is_err(), "and unreachable");

    let part = |n: u32, etag: &str| UploadPart { part_number: n, etag: etag.to_string() };
    let missing = store.complete_upload(&dest, &id, &[part(1, &e1), part(3, &e3)]).await;
    assert!(missing.is_err(), "every part must be listed");
    let wrong = store.complete_upload(&dest, &id, &[part(1, &e1), part(2, "\"2-999\""), part(3, &e3)]).await;
    assert!(wrong.is_err(), "an ETag must match the part");
    let elsewhere = store.complete_upload(&p("other.bin"), &id, &[part(1, &e1), part(2, &e2), part(3, &e3)]).await;
    assert!(elsewhere.is_err(), "an upload completes only at its destination");

    let written = store.complete_upload(&dest, &id, &[part(3, &e3), part(1, &e1), part(2, &e2)]).await.unwrap();
    assert_eq!(written, 8);
    assert_eq!(read(&store, "1/run/artifacts/model.bin").await, b"aaaabccc");
    assert!(!dir.join(".kiln-uploads").join(&id).exists(), "parts are removed");
    assert!(store.complete_upload(&dest, &id, &[part(1, &e1)]).await.is_err(), "an upload completes once");

    let id = store.create_upload(&p("aborted.bin"), 1).await.unwrap();
    store.put_part(&id, 1, body(b"zzz")).await.unwrap();
    store.abort_upload(&p("aborted.bin"), &id).await.unwrap();
    assert!(store.get(&p("aborted.bin")).await.is_err());
    assert!(store.put_part(&id, 1, body(b"z")).await.is_err(), "an aborted upload takes no parts");

    for bad_id in ["../../etc", "0123", "zz23456789abcdef0123456789abcdef"] {
        assert!(store.put_part(bad_id, 1, body(b"z")).await.is_err(), "{bad_id}");
    }
    assert!(store.create_upload(&p("x.bin"), 0).await.is_err());
    assert!(store.create_upload(&p("x.bin"), MAX_UPLOAD_PARTS + 1).await.is_err());
    assert!(store.create_upload(&p("1/run"), 1).await.is_err(), "a folder cannot be replaced");
    std::fs::remove_dir_all(dir).unwrap();
}
