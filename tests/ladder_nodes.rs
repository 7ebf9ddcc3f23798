//! A ladder whose tiers draw from different sub-budgets: premium answers from
//! `chatbot/premium` until it is spent, then economy answers from `chatbot/tools`, then a
//! denial naming the node that ran out.

use budget_guard::{Budget, Error, Ladder, Limit, Tier, Unit, usd};

fn chatbot() -> Budget {
    Budget::builder("chatbot", Limit::hard(usd!("100")))
        .child("premium", Limit::hard(usd!("60")))
        .child("tools", Limit::hard(usd!("40")))
        .build()
        .unwrap()
}

fn ladder() -> Ladder {
    Ladder::new()
        .with(Tier::new("premium", usd!("2")).drawing_from("premium"))
        .with(Tier::new("economy", usd!("0.50")).drawing_from("tools"))
}

#[test]
fn premium_until_its_node_is_spent_then_economy_then_a_denial_naming_the_empty_node() {
    let chatbot = chatbot();
    let ladder = ladder();
    let mut served = Vec::new();
    loop {
        match ladder.reserve(&chatbot) {
            Ok((tier, guard)) => {
                served.push(tier.name().to_owned());
                guard.commit(tier.estimate()).unwrap();
            }
            Err(error) => {
                // $60 / $2 = 30 premium answers, then $40 / $0.50 = 80 economy answers.
                let exceeded = error.exceeded().expect("a BudgetExceeded denial");
                assert_eq!(exceeded.node.as_ref(), "chatbot/tools");
                assert_eq!(exceeded.limit, usd!("40"));
                assert_eq!(exceeded.spent, usd!("40"));
                assert_eq!(exceeded.requested, usd!("0.50"));
                break;
            }
        }
    }
    assert_eq!(served.len(), 110);
    assert!(served[..30].iter().all(|tier| tier == "premium"));
    assert!(served[30..].iter().all(|tier| tier == "economy"));
    let spent = |path: &str| chatbot.at(path).unwrap().balance(Unit::Usd).unwrap().spent;
    assert_eq!(spent("premium"), usd!("60"));
    assert_eq!(spent("tools"), usd!("40"));
    assert_eq!(chatbot.balance(Unit::Usd).unwrap().spent, usd!("100"));
}

#[test]
fn select_checks_each_tiers_own_node() {
    let chatbot = chatbot();
    let ladder = ladder();
    assert_eq!(ladder.select(&chatbot).unwrap().name(), "premium");
    let premium = chatbot.at("premium").unwrap();
    premium
        .reserve(usd!("59"))
        .unwrap()
        .commit(usd!("59"))
        .unwrap(); // $1 left there
    assert_eq!(ladder.select(&chatbot).unwrap().name(), "economy");
    let tools = chatbot.at("tools").unwrap();
    tools
        .reserve(usd!("39.75"))
        .unwrap()
        .commit(usd!("39.75"))
        .unwrap(); // $0.25 left
    let error = ladder.select(&chatbot).unwrap_err();
    assert_eq!(error.exceeded().unwrap().node.as_ref(), "chatbot/tools");
}

#[test]
fn usage_rules_read_the_tiers_node() {
    let chatbot = chatbot();
    // The premium node at 50 % is above the rule's 40 %, though chatbot is only at 30 %.
    let ladder = Ladder::new()
        .with(
            Tier::new("premium", usd!("1"))
                .drawing_from("premium")
                .while_usage_below(40),
        )
        .with(Tier::new("economy", usd!("0.10")).drawing_from("tools"));
    let premium = chatbot.at("premium").unwrap();
    premium
        .reserve(usd!("30"))
        .unwrap()
        .commit(usd!("30"))
        .unwrap();
    assert_eq!(ladder.select(&chatbot).unwrap().name(), "economy");
    let (tier, guard) = ladder.reserve(&chatbot).unwrap();
    assert_eq!(tier.name(), "economy");
    assert_eq!(
        guard.budget().path(),
        "chatbot/tools",
        "the hold is on the tier's node"
    );
}

#[test]
fn a_fallback_chain_charges_each_tier_on_its_node() {
    let chatbot = chatbot();
    let served = ladder()
        .fallback(
            &chatbot,
            |error: &&str| *error == "overloaded",
            |tier, _guard| {
                if tier.name() == "premium" {
                    Err("overloaded")
                } else {
                    Ok(("answer", usd!("0.30")))
                }
            },
        )
        .unwrap();
    assert_eq!(served.tier.as_ref(), "economy");
    let spent = |path: &str| chatbot.at(path).unwrap().balance(Unit::Usd).unwrap().spent;
    assert_eq!(spent("premium"), usd!("0"));
    assert_eq!(spent("tools"), usd!("0.30"));
    assert_eq!(chatbot.balance(Unit::Usd).unwrap().reserved, usd!("0"));
}

#[test]
fn a_tier_naming_a_missing_node_is_a_typed_error_that_holds_nothing() {
    let chatbot = chatbot();
    let ladder = Ladder::new().with(Tier::new("premium", usd!("1")).drawing_from("premum"));
    assert!(matches!(
        ladder.reserve(&chatbot),
        Err(Error::UnknownNode { path }) if path == "chatbot/premum"
    ));
    assert!(matches!(
        ladder.select(&chatbot),
        Err(Error::UnknownNode { .. })
    ));
    assert_eq!(chatbot.balance(Unit::Usd).unwrap().reserved, usd!("0"));
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_fallback_charges_each_tier_on_its_node() {
    let chatbot = chatbot();
    // Spend premium down to $1: its $2 tier is denied there and the chain moves to tools.
    let premium = chatbot.at("premium").unwrap();
    premium
        .reserve(usd!("59"))
        .unwrap()
        .commit(usd!("59"))
        .unwrap();
    let served = ladder()
        .fallback_async(
            &chatbot,
            |_: &&str| true,
            async |tier, guard| {
                assert_eq!(guard.budget().path(), "chatbot/tools");
                Ok::<_, &str>((tier.name().to_owned(), usd!("0.20")))
            },
        )
        .await
        .unwrap();
    assert_eq!(served.value, "economy");
    let denied = &served.attempts[0];
    assert_eq!(denied.tier.as_ref(), "premium");
    let spent = |path: &str| chatbot.at(path).unwrap().balance(Unit::Usd).unwrap().spent;
    assert_eq!(spent("premium"), usd!("59"));
    assert_eq!(spent("tools"), usd!("0.20"));
}
