//! The alert channels against local receivers (functions/testkit's
//! `alert_receivers`): each delivers what it should, signatures verify, the
//! outcome says whether a retry can help, and no error shows a secret. The
//! SNS test runs on moto (`scripts/emulators run -- cargo test --test alert_channels`).

use std::collections::BTreeMap;
use std::time::Duration;

use ferry::alerts::channel::{SendError, Senders};
use ferry::alerts::{Notice, State, SubjectKind};
use ferry::clock::ManualClock;
use ferry::config::{Channel, Condition};
use ferry_testkit::alert_receivers::{SlackReceiver, SmtpSink, WebhookReceiver};

const NOW: i64 = 1_700_000_000_000;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1vbmU=";

fn notice() -> Notice {
    Notice {
        id: "run_failed:workflow:new-lead:1700000100000".into(),
        condition: Condition::RunFailed,
        kind: SubjectKind::Workflow,
        subject: "new-lead".into(),
        state: State::Firing,
        title: "new-lead: 12 runs failed for good".into(),
        detail: "step create-contact: the CRM answered 422 (email is invalid)".into(),
        count: 12,
        first_at: NOW - 240_000,
        last_at: NOW,
        commands: vec![
            "ferry runs show 0190aa3b-0000-7000-8000-000000000001".into(),
            "ferry dlq replay --workflow new-lead".into(),
        ],
        facts: BTreeMap::from([
            ("reason".to_owned(), "rejected".to_owned()),
            ("step".to_owned(), "create-contact".to_owned()),
        ]),
    }
}

fn senders() -> Senders {
    Senders::with_clock(ManualClock::at(NOW))
}

fn slack(url: &str) -> Channel {
    Channel::Slack {
        webhook_url: url.into(),
    }
}

fn webhook(url: &str, secret: &str) -> Channel {
    Channel::Webhook {
        url: url.into(),
        secret: secret.into(),
    }
}

fn email(smtp: &str) -> Channel {
    Channel::Email {
        to: vec!["oncall@example.com".into()],
        from: Some("ferry@example.com".into()),
        smtp: Some(smtp.into()),
        sns_topic: None,
    }
}

async fn fails(channel: &Channel) -> SendError {
    senders()
        .send("ops", channel, &notice())
        .await
        .expect_err("the send fails")
}

mod alert_channels {
    use super::*;

    #[tokio::test]
    async fn slack_gets_a_readable_message_with_everything_in_it() {
        let rx = SlackReceiver::start().await;
        senders()
            .send("ops", &slack(rx.url()), &notice())
            .await
            .unwrap();
        let got = rx.received();
        assert_eq!(got.len(), 1);
        let text = got[0]["text"].as_str().unwrap();
        assert!(
            text.starts_with("[FIRING] new-lead: 12 runs failed for good"),
            "{text}"
        );
        let blocks = serde_json::to_string(&got[0]["blocks"]).unwrap();
        for expected in [
            "firing",
            "workflow new-lead",
            "run_failed",
            "*Count*\\n12",
            "2023-11-14T22:09:20Z",
            "2023-11-14T22:13:20Z",
            "the CRM answered 422 (email is invalid)",
            "*step*: create-contact",
            "```\\nferry runs show 0190aa3b-0000-7000-8000-000000000001\\nferry dlq replay --workflow new-lead\\n```",
        ] {
            assert!(
                blocks.contains(expected),
                "{expected:?} missing from {blocks}"
            );
        }
    }

    #[tokio::test]
    async fn slack_failures_say_whether_to_retry_and_never_show_the_url() {
        let rx = SlackReceiver::start().await;
        let channel = slack(rx.url());
        rx.fail_next(500, 1);
        let e = fails(&channel).await;
        assert!(e.retryable);
        assert_eq!(
            e.message,
            "channel ops (slack): Slack answered 500 rollup_error"
        );

        rx.fail_next(429, 1);
        let e = fails(&channel).await;
        assert!(e.retryable);
        assert_eq!(e.retry_after, Some(Duration::from_secs(1)));

        for (status, body) in [
            (400, "invalid_payload"),
            (403, "action_prohibited"),
            (404, "no_service"),
            (410, "channel_is_archived"),
        ] {
            rx.fail_next(status, 1);
            let e = fails(&channel).await;
            assert!(!e.retryable, "{status}");
            assert_eq!(
                e.message,
                format!("channel ops (slack): Slack answered {status} {body}")
            );
        }

        // Nothing listening: retryable, and still no URL.
        let gone = slack("http://127.0.0.1:1/services/T000/B000/secret-token");
        let e = fails(&gone).await;
        assert!(e.retryable, "{e}");
        assert!(
            !e.message.contains("secret-token") && !e.message.contains("127.0.0.1"),
            "{e}"
        );
        assert!(rx.received().is_empty());
    }

    #[tokio::test]
    async fn the_slack_receiver_rejects_what_slack_would() {
        let rx = SlackReceiver::start().await;
        let http = reqwest::Client::new();
        let r = http.post(rx.url()).body("text=hi").send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.text().await.unwrap(), "invalid_payload");
        let r = http
            .post(rx.url())
            .json(&serde_json::json!({"text": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(rx.rejected(), 2);
        assert!(rx.received().is_empty());
    }

    #[tokio::test]
    async fn webhooks_are_signed_and_the_receiver_verifies_them() {
        let clock = ManualClock::at(NOW);
        let rx = WebhookReceiver::start(SECRET, clock).await;
        senders()
            .send("pager", &webhook(rx.url(), SECRET), &notice())
            .await
            .unwrap();
        assert_eq!(rx.unverified(), 0);
        let got = rx.verified();
        assert_eq!(got.len(), 1);
        let (headers, body) = &got[0];
        assert_eq!(headers["webhook-id"], notice().id.as_str());
        assert_eq!(headers["webhook-timestamp"], "1700000000");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body["type"], "ferry.alert");
        assert_eq!(body["version"], 1);
        assert_eq!(body["id"], notice().id.as_str());
        assert_eq!(body["condition"], "run_failed");
        assert_eq!(body["kind"], "workflow");
        assert_eq!(body["state"], "firing");
        assert_eq!(body["count"], 12);
        assert_eq!(body["first_at"], NOW - 240_000);
        assert_eq!(body["facts"]["step"], "create-contact");
        assert_eq!(body["commands"][1], "ferry dlq replay --workflow new-lead");
    }

    #[tokio::test]
    async fn a_wrong_secret_does_not_verify_and_is_not_retried() {
        let rx = WebhookReceiver::start(SECRET, ManualClock::at(NOW)).await;
        let e = fails(&webhook(rx.url(), OTHER_SECRET)).await;
        assert_eq!(rx.unverified(), 1);
        assert!(rx.verified().is_empty());
        assert!(!e.retryable);
        assert!(
            e.message
                .starts_with("channel ops (webhook): the webhook at http://127.0.0.1:"),
            "{e}"
        );
        assert!(
            e.message
                .ends_with(" answered 401 signature does not verify"),
            "{e}"
        );
        assert!(
            !e.message.contains(OTHER_SECRET) && !e.message.contains("c2VjcmV0"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn webhook_5xx_and_429_retry_other_4xx_do_not() {
        let rx = WebhookReceiver::start(SECRET, ManualClock::at(NOW)).await;
        let channel = webhook(rx.url(), SECRET);
        rx.fail_next(503, 1);
        assert!(fails(&channel).await.retryable);
        rx.fail_next(429, 1);
        let e = fails(&channel).await;
        assert!(e.retryable);
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        rx.fail_next(422, 1);
        let e = fails(&channel).await;
        assert!(!e.retryable);
        assert!(!e.message.contains(SECRET), "{e}");
        // After the failures, the next one is delivered.
        senders().send("ops", &channel, &notice()).await.unwrap();
        assert_eq!(rx.verified().len(), 1);
        assert_eq!(rx.unverified(), 0);
    }

    #[tokio::test]
    async fn a_secret_that_is_not_whsec_base64_is_reported_without_it() {
        let e = fails(&webhook("http://127.0.0.1:1/alerts", "whsec_not base64!")).await;
        assert!(!e.retryable);
        assert_eq!(
            e.message,
            "channel ops (webhook): secret: must be `whsec_` followed by base64"
        );
    }

    #[tokio::test]
    async fn email_by_smtp_carries_the_title_and_everything_slack_shows() {
        let sink = SmtpSink::start().await;
        senders()
            .send("mail", &email(&sink.url()), &notice())
            .await
            .unwrap();
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        let m = &mails[0];
        assert_eq!(m.from, "ferry@example.com");
        assert_eq!(m.to, ["oncall@example.com"]);
        assert!(
            m.data
                .contains("Subject: [FIRING] new-lead: 12 runs failed for good"),
            "{}",
            m.data
        );
        for expected in [
            "State:     firing",
            "Subject:   workflow new-lead",
            "Seen:      12 times, first 2023-11-14T22:09:20Z, last 2023-11-14T22:13:20Z",
            "the CRM answered 422 (email is invalid)",
            "step: create-contact",
            "    ferry runs show 0190aa3b-0000-7000-8000-000000000001",
            "    ferry dlq replay --workflow new-lead",
        ] {
            assert!(
                m.data.contains(expected),
                "{expected:?} missing from {}",
                m.data
            );
        }
    }

    #[tokio::test]
    async fn smtp_transient_replies_retry_permanent_ones_do_not_and_passwords_stay_hidden() {
        let sink = SmtpSink::start().await;
        let channel = email(&sink.url());
        sink.reject_next("451 4.3.0 try again later", 1);
        let e = fails(&channel).await;
        assert!(e.retryable, "{e}");
        sink.reject_next("550 5.7.1 relaying denied", 1);
        let e = fails(&channel).await;
        assert!(!e.retryable, "{e}");
        assert!(e.message.contains("relaying denied"), "{e}");
        assert!(sink.mails().is_empty());

        let e = fails(&email("smtp://alerts:hunter2pass@127.0.0.1:1")).await;
        assert!(e.retryable, "{e}");
        assert!(!e.message.contains("hunter2pass"), "{e}");
        let e = fails(&email("http://alerts:hunter2pass@127.0.0.1:1")).await;
        assert!(!e.retryable);
        assert!(!e.message.contains("hunter2pass"), "{e}");
    }

    #[tokio::test]
    async fn an_sns_only_email_channel_needs_an_sns_client() {
        let channel = Channel::Email {
            to: vec![],
            from: None,
            smtp: None,
            sns_topic: Some("arn:aws:sns:us-east-1:000000000000:alerts".into()),
        };
        let e = fails(&channel).await;
        assert!(!e.retryable);
        assert_eq!(
            e.message,
            "channel ops (email): has only an sns_topic, and SNS is used on AWS only; add `smtp` to send from here"
        );
    }

    #[tokio::test]
    async fn sns_publishes_subject_and_text_to_the_topic() {
        let Some(config) =
            ferry::contract::aws::emulator("sns_publishes_subject_and_text_to_the_topic").await
        else {
            return;
        };
        let sns = aws_sdk_sns::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let name = ferry::contract::aws::random_name("alerts");
        let topic = sns.create_topic().name(&name).send().await.unwrap();
        let topic = topic.topic_arn().unwrap().to_owned();
        let queue = sqs.create_queue().queue_name(&name).send().await.unwrap();
        let queue_url = queue.queue_url().unwrap().to_owned();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let queue_arn =
            attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .send()
            .await
            .unwrap();

        let channel = Channel::Email {
            to: vec![],
            from: None,
            smtp: None,
            sns_topic: Some(topic.clone()),
        };
        let mut n = notice();
        n.title = format!("new-lead: 12 runs failed for good — {}", "x".repeat(120));
        senders()
            .with_sns(sns)
            .send("ops", &channel, &n)
            .await
            .unwrap();

        let mut body = None;
        for _ in 0..20 {
            let got = sqs
                .receive_message()
                .queue_url(&queue_url)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            if let Some(m) = got.messages().first() {
                body = m.body().map(str::to_owned);
                break;
            }
        }
        let envelope: serde_json::Value =
            serde_json::from_str(&body.expect("a message on the queue")).unwrap();
        let subject = envelope["Subject"].as_str().unwrap();
        assert!(
            subject.starts_with("[FIRING] new-lead: 12 runs failed for good ? xxx"),
            "{subject}"
        );
        assert_eq!(subject.len(), 100);
        assert!(subject.is_ascii());
        let message = envelope["Message"].as_str().unwrap();
        assert!(
            message.contains("    ferry dlq replay --workflow new-lead"),
            "{message}"
        );
        assert!(message.contains("Seen:      12 times"), "{message}");
    }
}
