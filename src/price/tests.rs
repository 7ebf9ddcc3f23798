use super::*;

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

#[test]
fn per_million_is_an_exact_shift() {
    let price = ModelPrice::per_million(dec("2.50"), dec("10")).unwrap();
    assert_eq!(price.input(), dec("0.0000025"));
    assert_eq!(price.output(), dec("0.00001"));
    let price = ModelPrice::per_thousand(dec("0.003"), dec("0.015")).unwrap();
    assert_eq!(price.input(), dec("0.000003"));
}

#[test]
fn rounding_happens_once_on_the_total() {
    // Two buckets of 0.0000000005 each: exact total 0.000000001, one nano-dollar.
    // Rounding each bucket first would give two.
    let price = ModelPrice::per_token(dec("0.0000000005"), dec("0.0000000005")).unwrap();
    assert_eq!(price.cost(&Usage::new(1, 1)).unwrap().minor_units(), 1);
}

#[test]
fn overflow_is_an_error_not_a_wrap() {
    let price = ModelPrice::per_token(dec("1000"), dec("1000")).unwrap();
    assert!(matches!(
        price.cost(&Usage::new(u64::MAX, 0)),
        Err(PricingError::Overflow { .. })
    ));
    let fine = ModelPrice::per_token(dec("0.000000000000000000000000001"), dec("0")).unwrap();
    // 18446744073709551615 × 10^-27 = 0.0000000184…: rounded up to 19 nano-dollars.
    assert_eq!(
        fine.cost(&Usage::new(u64::MAX, 0)).unwrap().minor_units(),
        19
    );
}

#[test]
fn too_many_places_per_million_is_invalid() {
    let err = ModelPrice::per_million(dec("0.0000000000000000000000001"), dec("1")).unwrap_err();
    assert!(matches!(err, PricingError::InvalidPrice { .. }), "{err}");
}
