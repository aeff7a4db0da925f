//! The blob port's contract, run against every adapter.

use std::time::Duration;

use bytes::Bytes;
use stowage_storage::{BlobError, ByteRange, MIN_MULTIPART_PART, PresignOptions};
use stowage_tests::{Backend, Stores, collect, on_both_backends};

on_both_backends!(
    put_get_size_delete,
    range_reads,
    multipart_uploads,
    multipart_parts_must_be_large_enough,
    a_part_sent_again_replaces_the_earlier_one,
    presigned_urls_name_the_object,
    unfinished_uploads_are_listed_until_they_end,
    objects_are_listed_in_key_order_a_page_at_a_time,
    an_upload_completes_with_the_parts_it_lists,
);

async fn put_get_size_delete(stores: Stores) {
    let blobs = &stores.blobs;
    let key = "ws/acme/blobs/one";
    assert!(matches!(
        blobs.get(key, None).await,
        Err(BlobError::NotFound)
    ));
    assert_eq!(blobs.size(key).await.expect("size"), None);
    blobs
        .put(key, Bytes::from_static(b"hello blob"))
        .await
        .expect("put");
    assert_eq!(blobs.size(key).await.expect("size"), Some(10));
    let read = blobs.get(key, None).await.expect("get");
    assert_eq!((read.total_size, read.start, read.end), (10, 0, 9));
    assert_eq!(collect(read.body).await, b"hello blob");
    blobs
        .put(key, Bytes::from_static(b"replaced"))
        .await
        .expect("replace");
    assert_eq!(
        collect(blobs.get(key, None).await.expect("get").body).await,
        b"replaced"
    );
    blobs.delete(key).await.expect("delete");
    blobs.delete(key).await.expect("deleting again succeeds");
    assert_eq!(blobs.size(key).await.expect("size"), None);
    blobs
        .put("ws/acme/empty", Bytes::new())
        .await
        .expect("put empty");
    let empty = blobs.get("ws/acme/empty", None).await.expect("get empty");
    assert_eq!(empty.total_size, 0);
    assert!(collect(empty.body).await.is_empty());
}

async fn range_reads(stores: Stores) {
    let blobs = &stores.blobs;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    blobs
        .put("r/one", Bytes::from(data.clone()))
        .await
        .expect("put");
    let read = blobs
        .get(
            "r/one",
            Some(ByteRange {
                start: 10,
                end: Some(19),
            }),
        )
        .await
        .expect("range");
    assert_eq!(
        (read.total_size, read.start, read.end, read.len()),
        (1000, 10, 19, 10)
    );
    assert_eq!(collect(read.body).await, &data[10..20]);
    let open = blobs
        .get(
            "r/one",
            Some(ByteRange {
                start: 990,
                end: None,
            }),
        )
        .await
        .expect("open range");
    assert_eq!((open.start, open.end), (990, 999));
    assert_eq!(collect(open.body).await, &data[990..]);
    let past_end = blobs
        .get(
            "r/one",
            Some(ByteRange {
                start: 1000,
                end: None,
            }),
        )
        .await;
    assert!(
        matches!(past_end, Err(BlobError::InvalidRange { size: 1000 })),
        "{:?}",
        past_end.err()
    );
}

async fn multipart_uploads(stores: Stores) {
    let blobs = &stores.blobs;
    let key = "ws/acme/uploads/big";
    let first = vec![1u8; MIN_MULTIPART_PART as usize];
    let second = vec![2u8; 1234];
    let upload = blobs.start_multipart(key).await.expect("start");
    let part1 = blobs
        .put_part(key, &upload, 1, Bytes::from(first.clone()))
        .await
        .expect("part 1");
    let part2 = blobs
        .put_part(key, &upload, 2, Bytes::from(second.clone()))
        .await
        .expect("part 2");
    assert_eq!(
        blobs.size(key).await.expect("size"),
        None,
        "nothing visible before completion"
    );
    blobs
        .complete_multipart(key, &upload, &[part1, part2])
        .await
        .expect("complete");
    let content = collect(blobs.get(key, None).await.expect("get").body).await;
    assert_eq!(content.len(), first.len() + second.len());
    assert!(content[..first.len()] == first[..] && content[first.len()..] == second[..]);

    let abandoned = blobs
        .start_multipart("ws/acme/uploads/abandoned")
        .await
        .expect("start");
    blobs
        .put_part(
            "ws/acme/uploads/abandoned",
            &abandoned,
            1,
            Bytes::from_static(b"x"),
        )
        .await
        .expect("part");
    blobs
        .abort_multipart("ws/acme/uploads/abandoned", &abandoned)
        .await
        .expect("abort");
    blobs
        .abort_multipart("ws/acme/uploads/abandoned", &abandoned)
        .await
        .expect("abort again");
    assert_eq!(
        blobs.size("ws/acme/uploads/abandoned").await.expect("size"),
        None
    );
}

async fn multipart_parts_must_be_large_enough(stores: Stores) {
    let blobs = &stores.blobs;
    let key = "ws/acme/uploads/small";
    let upload = blobs.start_multipart(key).await.expect("start");
    let part1 = blobs
        .put_part(key, &upload, 1, Bytes::from(vec![0u8; 1024]))
        .await
        .expect("part 1");
    let part2 = blobs
        .put_part(key, &upload, 2, Bytes::from(vec![0u8; 1024]))
        .await
        .expect("part 2");
    let completed = blobs
        .complete_multipart(key, &upload, &[part1, part2])
        .await;
    assert!(
        matches!(completed, Err(BlobError::InvalidMultipart(_))),
        "{completed:?}"
    );
    assert_eq!(blobs.size(key).await.expect("size"), None);
    blobs.abort_multipart(key, &upload).await.expect("abort");

    // One small part alone is fine: it is the last.
    let single = blobs.start_multipart(key).await.expect("start");
    let only = blobs
        .put_part(key, &single, 1, Bytes::from_static(b"tiny"))
        .await
        .expect("part");
    blobs
        .complete_multipart(key, &single, &[only])
        .await
        .expect("complete");
    assert_eq!(blobs.size(key).await.expect("size"), Some(4));
}

/// A part number uploaded again replaces the part: completing with the earlier part's
/// receipt fails (nothing is assembled from bytes the caller did not list), and with the new
/// receipt the object holds the new bytes.
async fn a_part_sent_again_replaces_the_earlier_one(stores: Stores) {
    let blobs = &stores.blobs;
    let key = "ws/acme/uploads/again";
    let upload = blobs.start_multipart(key).await.expect("start");
    let earlier = blobs
        .put_part(key, &upload, 1, Bytes::from(vec![1u8; 1024]))
        .await
        .expect("part 1");
    let again = blobs
        .put_part(key, &upload, 1, Bytes::from(vec![2u8; 1024]))
        .await
        .expect("part 1 again");
    let completed = blobs
        .complete_multipart(key, &upload, std::slice::from_ref(&earlier))
        .await;
    assert!(
        matches!(completed, Err(BlobError::InvalidMultipart(_))),
        "{completed:?}"
    );
    assert_eq!(blobs.size(key).await.expect("size"), None);
    blobs
        .complete_multipart(key, &upload, &[again])
        .await
        .expect("complete");
    let content = collect(blobs.get(key, None).await.expect("get").body).await;
    assert_eq!(content, vec![2u8; 1024]);
}

async fn presigned_urls_name_the_object(stores: Stores) {
    let blobs = &stores.blobs;
    blobs
        .put("ws/acme/blobs/p", Bytes::from_static(b"presigned"))
        .await
        .expect("put");
    let options = PresignOptions {
        expires_in: Duration::from_secs(300),
        content_type: Some("application/vnd.oci.image.layer.v1.tar".into()),
        content_disposition: None,
    };
    let url = blobs
        .presign_get("ws/acme/blobs/p", &options)
        .await
        .expect("presign");
    assert!(url.contains("ws/acme/blobs/p"), "{url}");
    if stores.backend == Backend::Aws {
        // moto serves presigned URLs like S3 does; the embedded ones are served (and tested)
        // by the local server.
        let response = reqwest::get(&url).await.expect("GET presigned URL");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.oci.image.layer.v1.tar"
        );
        assert_eq!(response.bytes().await.expect("body").as_ref(), b"presigned");
    }
}

/// Multipart uploads started and neither completed nor aborted are listed, by prefix, a page
/// at a time, with when they started; ended ones are not.
async fn unfinished_uploads_are_listed_until_they_end(stores: Stores) {
    let blobs = &stores.blobs;
    let before = std::time::SystemTime::now() - Duration::from_secs(5);
    let mut open = Vec::new();
    for name in ["a", "b", "c"] {
        let key = format!("ws/acme/blobs/{name}");
        let id = blobs.start_multipart(&key).await.expect("start");
        blobs
            .put_part(&key, &id, 1, Bytes::from_static(b"part"))
            .await
            .expect("part");
        open.push((key, id));
    }
    let other = blobs
        .start_multipart("ws/other/blobs/x")
        .await
        .expect("start");
    // One completed, one aborted: neither is unfinished.
    let done = blobs
        .start_multipart("ws/acme/blobs/done")
        .await
        .expect("start");
    let part = blobs
        .put_part("ws/acme/blobs/done", &done, 1, Bytes::from_static(b"x"))
        .await
        .expect("part");
    blobs
        .complete_multipart("ws/acme/blobs/done", &done, &[part])
        .await
        .expect("complete");
    let dropped = blobs
        .start_multipart("ws/acme/blobs/dropped")
        .await
        .expect("start");
    blobs
        .abort_multipart("ws/acme/blobs/dropped", &dropped)
        .await
        .expect("abort");
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = blobs
            .list_unfinished("ws/acme/", after.as_deref(), 2)
            .await
            .expect("list");
        assert!(page.uploads.len() <= 2);
        for upload in &page.uploads {
            // moto dates every upload in 2010; S3 and the embedded store tell the truth.
            assert!(
                upload.started_at >= before || stores.backend == Backend::Aws,
                "{upload:?}"
            );
            listed.push((upload.key.clone(), upload.upload_id.clone()));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    listed.sort();
    open.sort();
    assert_eq!(listed, open);
    let everything = blobs.list_unfinished("ws/", None, 100).await.expect("list");
    assert_eq!(everything.uploads.len(), 4);
    assert!(everything.uploads.iter().any(|u| u.upload_id == other));
    for (key, id) in &open {
        blobs.abort_multipart(key, id).await.expect("abort");
    }
    blobs
        .abort_multipart("ws/other/blobs/x", &other)
        .await
        .expect("abort");
    let left = blobs.list_unfinished("ws/", None, 100).await.expect("list");
    assert!(left.uploads.is_empty(), "{left:?}");
}

/// The objects under a prefix, in key order, with their sizes, a page at a time; none of the
/// store's own working files.
async fn objects_are_listed_in_key_order_a_page_at_a_time(stores: Stores) {
    let blobs = &stores.blobs;
    let mut expected = Vec::new();
    for (i, name) in ["c", "a", "e", "b", "d"].iter().enumerate() {
        let key = format!("ws/acme/blobs/{name}");
        blobs
            .put(&key, Bytes::from(vec![b'x'; i + 1]))
            .await
            .expect("put");
        expected.push((key, i as u64 + 1));
    }
    blobs
        .put("ws/acme/uploads/u1/r", Bytes::from_static(b"carried"))
        .await
        .expect("put");
    blobs
        .put("ws/other/blobs/z", Bytes::from_static(b"z"))
        .await
        .expect("put");
    let open = blobs
        .start_multipart("ws/acme/blobs/pending")
        .await
        .expect("start");
    expected.sort();
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = blobs
            .list_objects("ws/acme/blobs/", after.as_deref(), 2)
            .await
            .expect("list");
        assert!(page.objects.len() <= 2);
        listed.extend(page.objects.iter().map(|o| (o.key.clone(), o.size)));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        listed, expected,
        "in key order, unfinished uploads left out"
    );
    let everything = blobs.list_objects("ws/", None, 100).await.expect("list");
    let keys: Vec<&str> = everything.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
    assert!(everything.next.is_none());
    blobs
        .abort_multipart("ws/acme/blobs/pending", &open)
        .await
        .expect("abort");
}

/// As on S3, an upload completed with fewer parts than were sent is made of those listed
/// (a refused chunk may have sent one more).
async fn an_upload_completes_with_the_parts_it_lists(stores: Stores) {
    let blobs = &stores.blobs;
    let key = "ws/acme/blobs/listed";
    let upload = blobs.start_multipart(key).await.expect("start");
    let size = MIN_MULTIPART_PART as usize;
    let mut parts = Vec::new();
    for (number, fill) in [(1u32, b'a'), (2, b'b'), (3, b'c')] {
        parts.push(
            blobs
                .put_part(key, &upload, number, Bytes::from(vec![fill; size]))
                .await
                .expect("part"),
        );
    }
    blobs
        .complete_multipart(key, &upload, &parts[..2])
        .await
        .expect("complete with two of three");
    let read = blobs.get(key, None).await.expect("get");
    assert_eq!(read.total_size, 2 * size as u64);
    let bytes = collect(read.body).await;
    assert!(bytes[..size].iter().all(|b| *b == b'a') && bytes[size..].iter().all(|b| *b == b'b'));
}
