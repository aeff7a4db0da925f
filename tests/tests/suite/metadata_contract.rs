//! The metadata port's contract, run against every adapter.

use std::sync::Arc;

use stowage_storage::{Condition, Key, MetadataError, Put, Query, SortRange, Write};
use stowage_tests::{Stores, on_both_backends};

fn put(partition: &str, sort: &str, data: &str) -> Put {
    Put::new(Key::new(partition, sort), data.as_bytes().to_vec())
}

on_both_backends!(
    put_get_and_versions,
    conditional_puts,
    conditional_deletes,
    transactions_are_all_or_nothing,
    transaction_limits,
    counters_add_atomically,
    queries_order_and_page,
    index_queries,
    batch_reads,
    only_one_of_racing_creators_wins,
    touches_bump_versions_of_existing_items,
);

async fn put_get_and_versions(stores: Stores) {
    let store = &stores.metadata;
    let key = Key::new("P#1", "A");
    assert_eq!(store.get(&key).await.expect("get"), None);
    store
        .write(Write::Put(put("P#1", "A", "one")))
        .await
        .expect("put");
    let item = store.get(&key).await.expect("get").expect("present");
    assert_eq!(item.data, b"one");
    assert_eq!(item.version, 1);
    assert_eq!(item.count, 0);
    assert_eq!(item.index, None);
    store
        .write(Write::Put(put("P#1", "A", "two")))
        .await
        .expect("put");
    let item = store.get(&key).await.expect("get").expect("present");
    assert_eq!((item.data.as_slice(), item.version), (&b"two"[..], 2));
    // Binary data survives as it is.
    let binary: Vec<u8> = (0..=255).collect();
    store
        .write(Write::Put(Put::new(Key::new("P#1", "bin"), binary.clone())))
        .await
        .expect("put binary");
    let item = store
        .get(&Key::new("P#1", "bin"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(item.data, binary);
}

async fn conditional_puts(stores: Stores) {
    let store = &stores.metadata;
    let key = Key::new("P#2", "A");
    store
        .write(Write::Put(put("P#2", "A", "first").when(Condition::Absent)))
        .await
        .expect("create");
    let again = store
        .write(Write::Put(
            put("P#2", "A", "second").when(Condition::Absent),
        ))
        .await;
    assert!(
        matches!(again, Err(MetadataError::ConditionFailed { .. })),
        "{again:?}"
    );
    assert_eq!(
        store.get(&key).await.expect("get").expect("present").data,
        b"first"
    );

    let stale = store
        .write(Write::Put(
            put("P#2", "A", "stale").when(Condition::Version(7)),
        ))
        .await;
    assert!(matches!(stale, Err(MetadataError::ConditionFailed { .. })));
    store
        .write(Write::Put(
            put("P#2", "A", "cas").when(Condition::Version(1)),
        ))
        .await
        .expect("compare and swap");
    let item = store.get(&key).await.expect("get").expect("present");
    assert_eq!((item.data.as_slice(), item.version), (&b"cas"[..], 2));

    let missing = store
        .write(Write::Put(put("P#2", "B", "x").when(Condition::Exists)))
        .await;
    assert!(matches!(
        missing,
        Err(MetadataError::ConditionFailed { .. })
    ));
    assert_eq!(store.get(&Key::new("P#2", "B")).await.expect("get"), None);
}

async fn conditional_deletes(stores: Stores) {
    let store = &stores.metadata;
    let key = Key::new("P#3", "A");
    store
        .write(Write::Delete {
            key: key.clone(),
            condition: Condition::None,
        })
        .await
        .expect("deleting an absent item succeeds");
    let absent = store
        .write(Write::Delete {
            key: key.clone(),
            condition: Condition::Exists,
        })
        .await;
    assert!(matches!(absent, Err(MetadataError::ConditionFailed { .. })));
    store
        .write(Write::Put(put("P#3", "A", "x")))
        .await
        .expect("put");
    let stale = store
        .write(Write::Delete {
            key: key.clone(),
            condition: Condition::Version(9),
        })
        .await;
    assert!(matches!(stale, Err(MetadataError::ConditionFailed { .. })));
    assert!(store.get(&key).await.expect("get").is_some());
    store
        .write(Write::Delete {
            key: key.clone(),
            condition: Condition::Version(1),
        })
        .await
        .expect("delete");
    assert_eq!(store.get(&key).await.expect("get"), None);
}

async fn transactions_are_all_or_nothing(stores: Stores) {
    let store = &stores.metadata;
    store
        .write(Write::Put(put("P#4", "taken", "x")))
        .await
        .expect("put");
    let failing = store
        .transact(vec![
            Write::Put(put("P#4", "a", "1").when(Condition::Absent)),
            Write::Add {
                key: Key::new("P#4", "counter"),
                delta: 5,
            },
            Write::Put(put("P#4", "taken", "2").when(Condition::Absent)),
        ])
        .await;
    match failing {
        Err(MetadataError::ConditionFailed { index }) => assert_eq!(index, Some(2)),
        other => panic!("expected a failed condition, got {other:?}"),
    }
    assert_eq!(store.get(&Key::new("P#4", "a")).await.expect("get"), None);
    assert_eq!(
        store.get(&Key::new("P#4", "counter")).await.expect("get"),
        None
    );
    assert_eq!(
        store
            .get(&Key::new("P#4", "taken"))
            .await
            .expect("get")
            .expect("kept")
            .data,
        b"x"
    );

    let check_fails = store
        .transact(vec![
            Write::Check {
                key: Key::new("P#4", "nothing"),
                condition: Condition::Exists,
            },
            Write::Put(put("P#4", "b", "1")),
        ])
        .await;
    assert!(matches!(
        check_fails,
        Err(MetadataError::ConditionFailed { index: Some(0) })
    ));
    assert_eq!(store.get(&Key::new("P#4", "b")).await.expect("get"), None);

    store
        .write(Write::Put(put("P#4", "guard", "g")))
        .await
        .expect("put");
    store
        .transact(vec![
            Write::Check {
                key: Key::new("P#4", "guard"),
                condition: Condition::Version(1),
            },
            Write::Put(put("P#4", "a", "1").when(Condition::Absent)),
            Write::Delete {
                key: Key::new("P#4", "taken"),
                condition: Condition::Exists,
            },
        ])
        .await
        .expect("transaction");
    assert!(
        store
            .get(&Key::new("P#4", "a"))
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        store.get(&Key::new("P#4", "taken")).await.expect("get"),
        None
    );
}

async fn transaction_limits(stores: Stores) {
    let store = &stores.metadata;
    let too_many: Vec<Write> = (0..101)
        .map(|i| Write::Put(put("P#5", &format!("{i:03}"), "x")))
        .collect();
    assert!(matches!(
        store.transact(too_many).await,
        Err(MetadataError::InvalidRequest(_))
    ));
    let twice = vec![
        Write::Put(put("P#5", "a", "1")),
        Write::Put(put("P#5", "a", "2")),
    ];
    assert!(matches!(
        store.transact(twice).await,
        Err(MetadataError::InvalidRequest(_))
    ));
    assert!(matches!(
        store.transact(vec![]).await,
        Err(MetadataError::InvalidRequest(_))
    ));
    let full: Vec<Write> = (0..100)
        .map(|i| Write::Put(put("P#5", &format!("{i:03}"), "x")))
        .collect();
    store
        .transact(full)
        .await
        .expect("a transaction of 100 writes");
    let page = store
        .query(&Query::prefix("P#5", "", 1000))
        .await
        .expect("query");
    assert_eq!(page.items.len(), 100);
}

async fn counters_add_atomically(stores: Stores) {
    let store = Arc::clone(&stores.metadata);
    let key = Key::new("P#6", "usage");
    let adders = (0..20).map(|i| {
        let store = Arc::clone(&store);
        let key = key.clone();
        tokio::spawn(async move { store.write(Write::Add { key, delta: i }).await })
    });
    for adder in adders {
        adder.await.expect("task").expect("add");
    }
    assert_eq!(
        store.get(&key).await.expect("get").expect("present").count,
        (0..20).sum::<i64>()
    );
    store
        .write(Write::Add {
            key: key.clone(),
            delta: -190,
        })
        .await
        .expect("subtract");
    assert_eq!(
        store.get(&key).await.expect("get").expect("present").count,
        0
    );
    // A put replaces the record but keeps the counter, and an add keeps the record.
    store
        .write(Write::Add {
            key: key.clone(),
            delta: 3,
        })
        .await
        .expect("add");
    store
        .write(Write::Put(put("P#6", "usage", "record")))
        .await
        .expect("put");
    store
        .write(Write::Add {
            key: key.clone(),
            delta: 4,
        })
        .await
        .expect("add");
    let item = store.get(&key).await.expect("get").expect("present");
    assert_eq!((item.data.as_slice(), item.count), (&b"record"[..], 7));
}

async fn queries_order_and_page(stores: Stores) {
    let store = &stores.metadata;
    let sorts = [
        "TAG#b", "TAG#a", "TAG#c", "TAG#aa", "VER#1", "TAF", "TAG", "TAG#d",
    ];
    for sort in sorts {
        store
            .write(Write::Put(put("P#7", sort, sort)))
            .await
            .expect("put");
    }
    store
        .write(Write::Put(put("P#7x", "TAG#z", "other partition")))
        .await
        .expect("put");

    let all_tags = ["TAG#a", "TAG#aa", "TAG#b", "TAG#c", "TAG#d"];
    let mut seen = Vec::new();
    let mut query = Query::prefix("P#7", "TAG#", 2);
    loop {
        let page = store.query(&query).await.expect("query");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|item| item.key.sort.clone()));
        match page.next {
            Some(cursor) => query = query.after(Some(cursor)),
            None => break,
        }
    }
    assert_eq!(seen, all_tags);

    let descending = store
        .query(&Query::prefix("P#7", "TAG#", 3).descending())
        .await
        .expect("query");
    let sorts: Vec<_> = descending
        .items
        .iter()
        .map(|i| i.key.sort.as_str())
        .collect();
    assert_eq!(sorts, ["TAG#d", "TAG#c", "TAG#b"]);
    let rest = store
        .query(
            &Query::prefix("P#7", "TAG#", 10)
                .descending()
                .after(descending.next),
        )
        .await
        .expect("query");
    let sorts: Vec<_> = rest.items.iter().map(|i| i.key.sort.as_str()).collect();
    assert_eq!(sorts, ["TAG#aa", "TAG#a"]);
    assert_eq!(rest.next, None);

    let between = Query {
        range: SortRange::Between {
            start: "TAG#aa".into(),
            end: "TAG#c".into(),
        },
        ..Query::prefix("P#7", "", 10)
    };
    let sorts: Vec<_> = store
        .query(&between)
        .await
        .expect("query")
        .items
        .into_iter()
        .map(|i| i.key.sort)
        .collect();
    assert_eq!(sorts, ["TAG#aa", "TAG#b", "TAG#c"]);

    let whole = store
        .query(&Query::prefix("P#7", "", 100))
        .await
        .expect("query");
    assert_eq!(whole.items.len(), 8);
    assert!(
        store
            .query(&Query::prefix("P#none", "", 10))
            .await
            .expect("query")
            .items
            .is_empty()
    );
}

async fn index_queries(stores: Stores) {
    let store = &stores.metadata;
    for (partition, user) in [
        ("WS#a", "alice"),
        ("WS#b", "alice"),
        ("WS#c", "bob"),
        ("WS#d", "alice"),
    ] {
        store
            .write(Write::Put(
                put(partition, "ROLE", user).indexed(Key::new(format!("USER#{user}"), partition)),
            ))
            .await
            .expect("put");
    }
    let mut seen = Vec::new();
    let mut query = Query::prefix("USER#alice", "WS#", 2).on_index();
    loop {
        let page = store.query(&query).await.expect("index query");
        for item in &page.items {
            assert_eq!(item.data, b"alice");
            assert_eq!(
                item.index.as_ref().map(|k| k.partition.as_str()),
                Some("USER#alice")
            );
        }
        seen.extend(page.items.into_iter().map(|item| item.key.partition));
        match page.next {
            Some(cursor) => query = query.after(Some(cursor)),
            None => break,
        }
    }
    assert_eq!(seen, ["WS#a", "WS#b", "WS#d"]);
    // Rewriting an item without an index entry takes it out of the index.
    store
        .write(Write::Put(put("WS#b", "ROLE", "alice")))
        .await
        .expect("put");
    let page = store
        .query(&Query::prefix("USER#alice", "", 10).on_index())
        .await
        .expect("query");
    let partitions: Vec<_> = page
        .items
        .iter()
        .map(|i| i.key.partition.as_str())
        .collect();
    assert_eq!(partitions, ["WS#a", "WS#d"]);
}

async fn batch_reads(stores: Stores) {
    let store = &stores.metadata;
    store
        .write(Write::Put(put("P#8", "a", "A")))
        .await
        .expect("put");
    store
        .write(Write::Put(put("P#9", "b", "B")))
        .await
        .expect("put");
    let keys = [
        Key::new("P#9", "b"),
        Key::new("P#8", "missing"),
        Key::new("P#8", "a"),
    ];
    let items = store.get_many(&keys).await.expect("batch");
    let data: Vec<_> = items
        .iter()
        .map(|i| i.as_ref().map(|i| i.data.clone()))
        .collect();
    assert_eq!(data, [Some(b"B".to_vec()), None, Some(b"A".to_vec())]);
    let too_many: Vec<Key> = (0..101).map(|i| Key::new("P#8", format!("{i}"))).collect();
    assert!(matches!(
        store.get_many(&too_many).await,
        Err(MetadataError::InvalidRequest(_))
    ));
    let hundred: Vec<Key> = (0..100).map(|i| Key::new("P#8", format!("{i}"))).collect();
    assert_eq!(
        store.get_many(&hundred).await.expect("batch of 100").len(),
        100
    );
}

async fn only_one_of_racing_creators_wins(stores: Stores) {
    let store = Arc::clone(&stores.metadata);
    let racers = (0..20).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .write(Write::Put(
                    put("WS#race", "WS", &format!("{i}")).when(Condition::Absent),
                ))
                .await
        })
    });
    let mut won = 0;
    let mut lost = 0;
    for racer in racers {
        match racer.await.expect("task") {
            Ok(()) => won += 1,
            Err(MetadataError::ConditionFailed { .. }) => lost += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((won, lost), (1, 19));
}

async fn touches_bump_versions_of_existing_items(stores: Stores) {
    let store = &stores.metadata;
    let key = Key::new("P#10", "blob");
    let absent = store.write(Write::Touch { key: key.clone() }).await;
    assert!(
        matches!(absent, Err(MetadataError::ConditionFailed { .. })),
        "{absent:?}"
    );
    assert_eq!(
        store.get(&key).await.expect("get"),
        None,
        "a touch creates nothing"
    );
    store
        .write(Write::Put(put("P#10", "blob", "record")))
        .await
        .expect("put");
    store
        .write(Write::Touch { key: key.clone() })
        .await
        .expect("touch");
    let item = store.get(&key).await.expect("get").expect("present");
    assert_eq!(
        (item.data.as_slice(), item.version),
        (&b"record"[..], 2),
        "same record, new version"
    );
    // A delete conditional on the old version now loses.
    let stale = store
        .write(Write::Delete {
            key: key.clone(),
            condition: Condition::Version(1),
        })
        .await;
    assert!(matches!(stale, Err(MetadataError::ConditionFailed { .. })));
    let in_transaction = store
        .transact(vec![
            Write::Touch { key: key.clone() },
            Write::Touch {
                key: Key::new("P#10", "gone"),
            },
        ])
        .await;
    assert!(
        matches!(
            in_transaction,
            Err(MetadataError::ConditionFailed { index: Some(1) })
        ),
        "{in_transaction:?}"
    );
    assert_eq!(
        store
            .get(&key)
            .await
            .expect("get")
            .expect("present")
            .version,
        2,
        "nothing was applied"
    );
}
