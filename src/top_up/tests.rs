use super::*;

#[test]
fn rules_validate() {
    let usd = |text| Amount::usd(text).unwrap();
    let rule = TopUp::when_below(usd("1")).adding(usd("2"));
    assert!(rule.validate().is_ok());
    assert!(
        TopUp::when_below(usd("0"))
            .adding(usd("2"))
            .validate()
            .is_err()
    );
    assert!(rule.at_most(0).validate().is_err());
    assert!(rule.at_most_total(usd("1")).validate().is_err());
    assert!(rule.at_most_total(Amount::tokens(9)).validate().is_err());
    assert!(rule.predictive(Duration::ZERO).validate().is_err());
    assert!(rule.per(Duration::MAX).validate().is_err());
    assert_eq!(
        rule.at_most(2).per(Duration::from_secs(60)).to_string(),
        "add $2.00 when below $1.00, at most 2 times per 60s"
    );
}
