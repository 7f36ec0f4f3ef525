//! Steps 1 and 2: the payment page, then the driver's answer racing the expiry.

use super::*;

/// Steps 1 and 2: the payment page, then the driver's answer racing the expiry.
/// `None` when the session ended without a hold.
pub(super) async fn create_and_await_payment(
    ctx: &WorkflowContext<SessionWorkflow>,
    input: &SessionInput,
) -> WorkflowResult<Option<Authorization>> {
    let sid = &input.session_id;
    let created = ctx
        .execute_activity(
            contracts::CreatePayment,
            CreatePaymentInput {
                session_id: sid.clone(),
                payment_id: input.payment_id.clone(),
                amount: input.authorized_amount,
                idempotency_key: idempotency_key(sid, Step::CreatePayment),
                price_text: input.price_text.clone(),
                incremental: ctx.state(|s| s.top_up.is_some()),
            },
            options::create_payment(format!("hold {}", input.authorized_amount)),
        )
        .await;
    let created = match created {
        Ok(created) => created,
        Err(e) => {
            let error = CommandError::new(
                CommandErrorCode::PaymentUnavailable,
                format!("the payment page could not be created ({e}); try again later"),
            );
            ctx.state_mut(|s| {
                s.creation_failed = Some(error);
                s.session.end_reason = Some(EndReason::PaymentExpired);
            });
            set_status(ctx, SessionStatus::Canceled);
            record(ctx, &[]).await?;
            return Ok(None);
        }
    };
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.session.payment = Some(Payment {
            id: input.payment_id.clone(),
            session: sid.clone(),
            url: created.url.clone(),
            currency: input.authorized_amount.currency,
            authorized_amount: input.authorized_amount.amount,
            captured_amount: None,
            kind: ANONYMOUS.to_owned(),
            stripe: StripeRefs {
                intent_id: created.intent_id.clone(),
                checkout_session_id: Some(created.checkout_session_id.clone()),
            },
            status: PaymentStatus::Created,
            created_at: at,
            updated_at: at,
        });
    });
    record(ctx, &[EventType::SessionCreated, EventType::PaymentCreated]).await?;
    ctx.state_mut(|s| s.creation_recorded = true);

    let payment = PaymentRef {
        session_id: sid.clone(),
        checkout_session_id: created.checkout_session_id,
        idempotency_key: idempotency_key(sid, Step::ExpirePayment),
    };
    let answered = wait_until(
        ctx,
        |s| s.payment_outcome.is_some(),
        input.timings.payment_expiry,
        "payment expiry",
    )
    .await?;
    let mut outcome = if answered {
        ctx.state(|s| s.payment_outcome.clone())
    } else {
        None
    };
    if outcome.is_none() {
        // The expiry passed without word: a webhook may be late or lost, so ask the provider
        // before giving up, then expire the page (which may still find the driver just paid).
        let state = ctx
            .execute_activity(
                contracts::RetrievePayment,
                payment.clone(),
                options::settle_payment("check payment".into()),
            )
            .await
            .map_err(|e| activity_failed("retrieve_payment", e))?;
        outcome = Some(match state {
            ProviderPaymentState::Authorized {
                intent_id,
                amount_capturable,
            } => PaymentOutcome::Authorized {
                intent_id,
                amount_capturable,
            },
            _ => expire_page(ctx, &payment).await?,
        });
    }

    match outcome {
        Some(PaymentOutcome::Authorized {
            intent_id,
            amount_capturable,
        }) => {
            let capturable = amount_capturable
                .checked_min(input.authorized_amount)
                .unwrap_or(input.authorized_amount);
            let at = now(ctx);
            ctx.state_mut(|s| {
                s.intent_id = Some(intent_id.clone());
                s.capturable = Some(capturable);
                s.set_payment_status(PaymentStatus::Authorized, at);
            });
            // Operators find a session by the PaymentIntent Stripe shows them. New command:
            // behind a patch, so sessions recorded before it replay without it.
            if ctx.patched("payment-intent-search") {
                ctx.upsert_search_attributes([PAYMENT_INTENT.value_set(intent_id.clone())]);
            }
            record(ctx, &[EventType::PaymentAuthorized]).await?;
            Ok(Some(Authorization {
                intent_id,
                capturable,
            }))
        }
        Some(PaymentOutcome::CanceledByDriver) => {
            // The page stays payable at the provider until expired: close it, and release a hold
            // that a payment racing the cancel may have placed.
            if let PaymentOutcome::Authorized { intent_id, .. } = expire_page(ctx, &payment).await?
            {
                release_hold(ctx, sid, &intent_id).await?;
            }
            let at = now(ctx);
            ctx.state_mut(|s| {
                s.session.end_reason = Some(EndReason::DriverCanceled);
                s.set_payment_status(PaymentStatus::Canceled, at);
            });
            set_status(ctx, SessionStatus::Canceled);
            record(ctx, &[EventType::SessionCanceled]).await?;
            Ok(None)
        }
        Some(PaymentOutcome::Expired) | None => {
            let at = now(ctx);
            ctx.state_mut(|s| {
                s.session.end_reason = Some(EndReason::PaymentExpired);
                s.set_payment_status(PaymentStatus::Expired, at);
            });
            set_status(ctx, SessionStatus::Expired);
            record(ctx, &[EventType::PaymentExpired]).await?;
            Ok(None)
        }
    }
}

/// Expires the payment page; reports `Authorized` if the driver paid in the same instant.
pub(super) async fn expire_page(
    ctx: &WorkflowContext<SessionWorkflow>,
    payment: &PaymentRef,
) -> WorkflowResult<PaymentOutcome> {
    let state = ctx
        .execute_activity(
            contracts::ExpirePayment,
            payment.clone(),
            options::settle_payment("expire payment page".into()),
        )
        .await
        .map_err(|e| activity_failed("expire_payment", e))?;
    Ok(match state {
        ProviderPaymentState::Authorized {
            intent_id,
            amount_capturable,
        } => PaymentOutcome::Authorized {
            intent_id,
            amount_capturable,
        },
        _ => PaymentOutcome::Expired,
    })
}

pub(super) async fn release_hold(
    ctx: &WorkflowContext<SessionWorkflow>,
    sid: &SessionId,
    intent_id: &str,
) -> WorkflowResult<()> {
    ctx.execute_activity(
        contracts::CancelPayment,
        CancelPaymentInput {
            session_id: sid.clone(),
            intent_id: intent_id.to_owned(),
            idempotency_key: idempotency_key(sid, Step::Cancel),
        },
        options::settle_payment("release hold".into()),
    )
    .await
    .map_err(|e| activity_failed("cancel_payment", e))
}
