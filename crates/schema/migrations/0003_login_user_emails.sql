-- 0003 login_user_emails: where the provider keeps the e-mail of each login user of this tenant.
-- NEVER EDIT.
--
-- Role comments live in a shared catalog that every login on the server can read, so personal
-- data stays here, inside the tenant, readable by its owner and admin group only. The provider
-- writes it; applications have no business with it.

create table public.usualstore_login_users (
    username text primary key check (username <> ''),
    email text not null check (email like '%_@_%'),
    updated_at timestamptz not null default now()
);

create trigger set_updated_at before update on public.usualstore_login_users
    for each row execute function public.set_updated_at();
