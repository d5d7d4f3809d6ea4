"""What each step of an application tells the other side (站内消息 and e-mail, via
`kaifang.notify`): the provider's reviewers hear of submissions and the applicant's signature; the
applicant hears of every decision, the provider's signature, the grant and its revocation."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kaifang.access.models import Application, Grant
from kaifang.accounts.models import User
from kaifang.notify.service import notify, provider_staff


def _page(application: Application) -> str:
    return f"/applications/{application.id}"


def _subject(application: Application) -> str:
    return f"“{application.entry.title}”（申请编号 {application.id}）"


def _applicant_name(db: Session, application: Application) -> str:
    user = db.get(User, application.user_id)
    assert user is not None  # foreign key
    return user.organisation_name or user.display_name


def submitted(db: Session, application: Application, *, again: bool = False) -> None:
    """A new (or completed, 补正) application waits for the provider's reviewers."""
    what = "补正后重新提交了" if again else "提交了"
    renewal = "（续期申请）" if application.renews_grant_id else ""
    notify(
        db,
        provider_staff(db, application.provider_id),
        f"开放申请待受理：{application.entry.title}",
        f"{_applicant_name(db, application)}{what}对{_subject(application)}的开放申请{renewal}。"
        "请及时受理，或说明需补正的内容退回申请人。",
        _page(application),
    )


def accepted(db: Session, application: Application) -> None:
    assert application.due_on is not None  # set on acceptance
    estimated = "（该年度节假日安排尚未载入，期限按推定节假日计算）" if application.due_estimated else ""
    notify(
        db,
        [application.user_id],
        f"开放申请已受理：{application.entry.title}",
        f"您对{_subject(application)}的开放申请已受理。"
        f"资源提供单位应在 {application.due_on:%Y-%m-%d} 结束前作出决定{estimated}。",
        _page(application),
    )


def returned(db: Session, application: Application) -> None:
    notify(
        db,
        [application.user_id],
        f"开放申请需补正：{application.entry.title}",
        f"您对{_subject(application)}的开放申请被退回补正。需补正的内容：{application.return_note}\n"
        "请在申请页面补正后重新提交。",
        _page(application),
    )


def approved(db: Session, application: Application) -> None:
    notify(
        db,
        [application.user_id],
        f"开放申请已批准：{application.entry.title}",
        f"您对{_subject(application)}的开放申请已批准，使用协议已生成。"
        "请阅读并签订协议；双方签订后授权生效。",
        f"{_page(application)}/agreement",
    )


def refused(db: Session, application: Application) -> None:
    notify(
        db,
        [application.user_id],
        f"开放申请不予批准：{application.entry.title}",
        f"您对{_subject(application)}的开放申请不予批准。\n"
        f"理由：{application.refusal_reason}\n依据：{application.refusal_basis}",
        _page(application),
    )


def signed_by_applicant(db: Session, application: Application) -> None:
    notify(
        db,
        provider_staff(db, application.provider_id),
        f"申请人已签订使用协议：{application.entry.title}",
        f"{_applicant_name(db, application)}已签订{_subject(application)}的使用协议。"
        "请提供单位审核人员签订，签订后授权生效。",
        f"{_page(application)}/agreement",
    )


def signed_by_provider(db: Session, application: Application) -> None:
    notify(
        db,
        [application.user_id],
        f"提供单位已签订使用协议：{application.entry.title}",
        f"资源提供单位已签订{_subject(application)}的使用协议。请您签订，签订后授权生效。",
        f"{_page(application)}/agreement",
    )


def granted(db: Session, application: Application, grant: Grant) -> None:
    notify(
        db,
        [grant.user_id],
        f"使用授权已生效：{application.entry.title}",
        f"双方已签订{_subject(application)}的使用协议，授权自 {grant.starts_on:%Y-%m-%d} 起生效，"
        f"至 {grant.last_day:%Y-%m-%d} 止。请按协议约定使用数据，并在期限届满前提交数据使用情况报告。",
        _page(application),
    )


def revoked(db: Session, application: Application, grant: Grant) -> None:
    notify(
        db,
        [grant.user_id],
        f"使用授权已撤销：{application.entry.title}",
        f"资源提供单位已撤销您对{_subject(application)}的使用授权，即时生效。\n"
        f"理由：{grant.revoke_reason}\n请停止使用并删除已获取的数据。",
        _page(application),
    )
