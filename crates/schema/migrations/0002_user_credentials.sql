-- 0002 user_credentials: password hashes leave public.users for a table of their own. NEVER EDIT.
--
-- users stays readable by every group (names, e-mail, role); the hashes, like tokens and sessions,
-- belong to the admin group and the owner only. The provider grants by table, and fixes this
-- table's privileges inside the transaction that creates it, so no other role ever sees a hash.

create table public.user_credentials (
    user_id bigint primary key references public.users (id) on delete cascade,
    password_hash text not null check (password_hash <> ''),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

insert into public.user_credentials (user_id, password_hash)
select id, password_hash from public.users;

alter table public.users drop column password_hash;

create trigger set_updated_at before update on public.user_credentials
    for each row execute function public.set_updated_at();
