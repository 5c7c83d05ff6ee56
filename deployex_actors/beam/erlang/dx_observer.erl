%% DeployEx's observer and tracer, loaded into a replica's node over distribution
%% (code:load_binary) and called with rpc. Every answer is bounded in size whatever the node's:
%% lists are top-N, terms are printed with a depth limit and cut at ?MAX_TEXT bytes, and a scan
%% of the processes stops after the number it is given.
%%
%% The tracer is a process of this module. It enforces its own limits (messages, duration,
%% rate), keeps at most its message limit in memory until DeployEx fetches them, and monitors
%% the DeployEx node that started it: when that connection goes, it clears every trace flag and
%% pattern it set and exits, so a node never keeps tracing for a tracer that is gone.
-module(dx_observer).

-export([system/0, apps/2, top/3, top/4, process/2, ports/1, ets/1]).
-export([trace_start/2, trace_fetch/1, trace_stop/1]).

-define(MAX_TEXT, 4096).
-define(DEPTH, 12).
-define(TRACER, dx_observer_tracer).
-define(LINGER_MS, 60000).
-define(KEEPER, dx_observer_keeper).
-define(KEEPER_IDLE_MS, 60000).

%% -- system ------------------------------------------------------------------------------------

system() ->
    {Uptime, _} = erlang:statistics(wall_clock),
    #{otp_release => list_to_binary(erlang:system_info(otp_release)),
      erts_version => list_to_binary(erlang:system_info(version)),
      schedulers => erlang:system_info(schedulers),
      schedulers_online => erlang:system_info(schedulers_online),
      uptime_ms => Uptime,
      memory => maps:from_list(erlang:memory()),
      run_queue => erlang:statistics(run_queue),
      process_count => erlang:system_info(process_count),
      process_limit => erlang:system_info(process_limit),
      port_count => erlang:system_info(port_count),
      port_limit => erlang:system_info(port_limit),
      atom_count => erlang:system_info(atom_count),
      atom_limit => erlang:system_info(atom_limit),
      ets_count => erlang:system_info(ets_count),
      ets_limit => erlang:system_info(ets_limit)}.

%% -- applications and supervision trees -----------------------------------------------------

apps(Depth, Width) ->
    [#{name => App, description => text(Desc), vsn => text(Vsn), tree => app_tree(App, Depth, Width)}
     || {App, Desc, Vsn} <- application:which_applications()].

app_tree(App, Depth, Width) ->
    case application_controller:get_master(App) of
        Master when is_pid(Master) ->
            case catch application_master:get_child(Master) of
                {Pid, _Mod} when is_pid(Pid) -> tree(Pid, supervisor, Depth, Width);
                _ -> undefined
            end;
        _ -> undefined
    end.

tree(Pid, Type, Depth, Width) ->
    Base = #{pid => pid_text(Pid), name => registered(Pid), type => Type},
    case Type =:= supervisor andalso Depth > 0 of
        false -> Base;
        true ->
            %% a call into the supervisor, with a short timeout (which_children waits forever)
            case catch gen_server:call(Pid, which_children, 2000) of
                Children when is_list(Children) ->
                    Shown = lists:sublist(Children, Width),
                    Base#{children => [child(C, Depth - 1, Width) || C <- Shown],
                          more => length(Children) - length(Shown)};
                Other -> Base#{error => show(Other)}
            end
    end.

child({Id, Child, Type, _Modules}, Depth, Width) when is_pid(Child) ->
    (tree(Child, Type, Depth, Width))#{id => show(Id)};
child({Id, Child, Type, _Modules}, _Depth, _Width) ->
    #{id => show(Id), pid => show(Child), type => Type}.

%% -- processes --------------------------------------------------------------------------------

%% The N largest by Key among at most Limit processes. process_info costs ~1-3 us a process,
%% so the scan is split over the online schedulers, each keeping only its own top N.
top(Key, N, Limit) when Key =:= memory; Key =:= reductions; Key =:= message_queue_len ->
    Pids = lists:sublist(erlang:processes(), Limit),
    Workers = [spawn_monitor(fun() -> exit({top, scan(Chunk, Key, N, [], 0)}) end)
               || Chunk <- chunks(Pids, erlang:system_info(schedulers_online))],
    answer(Pids, N, Workers).

%% reductions_delta: reductions since the previous refresh. The last scan's counts wait in an ETS
%% table of a keeper process, which monitors the DeployEx node that asked (Owner) and goes, with
%% its tables, when that connection goes or after a minute without a refresh. A process new
%% since the last refresh counts all its reductions; the first refresh has no previous counts.
top(reductions_delta, N, Limit, Owner) ->
    {Previous, Next} = keeper_tables(Owner),
    Pids = lists:delete(self(), lists:sublist(erlang:processes(), Limit)),  % not this scan
    Workers = [spawn_monitor(fun() -> exit({top, scan_delta(Chunk, Previous, Next, N, [], 0)}) end)
               || Chunk <- chunks(Pids, erlang:system_info(schedulers_online))],
    Answer = answer(Pids, N, Workers),
    ?KEEPER ! {scanned, Next},
    Answer#{first => Previous =:= undefined};
top(Key, N, Limit, _Owner) ->
    top(Key, N, Limit).

answer(Pids, N, Workers) ->
    Found = best(N, lists:append([collect(Worker) || Worker <- Workers])),
    #{scanned => length(Pids), process_count => erlang:system_info(process_count),
      processes => [(describe(Pid))#{value => Value} || {Value, Pid} <- Found]}.

scan_delta([Pid | Rest], Previous, Next, N, Acc, Size) ->
    case erlang:process_info(Pid, reductions) of
        {reductions, Count} ->
            ets:insert(Next, {Pid, Count}),
            Delta = Count - before(Previous, Pid, Count),
            case Size >= 4 * N of
                true -> scan_delta(Rest, Previous, Next, N, best(N, [{Delta, Pid} | Acc]), N);
                false -> scan_delta(Rest, Previous, Next, N, [{Delta, Pid} | Acc], Size + 1)
            end;
        undefined -> scan_delta(Rest, Previous, Next, N, Acc, Size)
    end;
scan_delta([], _Previous, _Next, N, Acc, _Size) ->
    best(N, Acc).

before(undefined, _Pid, Count) -> Count;
before(Table, Pid, _Count) ->
    case ets:lookup(Table, Pid) of
        [{_, Count}] -> Count;
        [] -> 0
    end.

keeper_tables(Owner) ->
    Keeper = case whereis(?KEEPER) of
                 undefined -> spawn(fun() -> keeper(Owner) end);
                 Pid -> Pid
             end,
    Ref = monitor(process, Keeper),
    Keeper ! {tables, self(), Ref},
    receive
        {Ref, Tables} -> demonitor(Ref, [flush]), Tables;
        {'DOWN', Ref, process, Keeper, _} -> keeper_tables(Owner)  % lost a race to register
    after 5000 -> exit(keeper_timeout)
    end.

keeper(Owner) ->
    true = register(?KEEPER, self()),
    erlang:monitor_node(Owner, true),
    keeper_loop(undefined, undefined).

keeper_loop(Current, Pending) ->
    receive
        {tables, From, Ref} ->
            drop(Pending),
            Next = ets:new(dx_observer_reductions, [set, public, {write_concurrency, true}]),
            From ! {Ref, {Current, Next}},
            keeper_loop(Current, Next);
        {scanned, Pending} ->
            drop(Current),
            keeper_loop(Pending, undefined);
        {nodedown, _} ->
            exit(normal);
        _Other ->  % a late {scanned, _} of a scan that was superseded
            keeper_loop(Current, Pending)
    after ?KEEPER_IDLE_MS ->
        exit(normal)
    end.

drop(undefined) -> ok;
drop(Table) -> catch ets:delete(Table).

collect({Pid, Ref}) ->
    receive
        {'DOWN', Ref, process, Pid, {top, Found}} -> Found;
        {'DOWN', Ref, process, Pid, _} -> []
    end.

chunks(List, Parts) when Parts > 1, length(List) > 1000 ->
    {Chunk, Rest} = lists:split(length(List) div Parts, List),
    [Chunk | chunks(Rest, Parts - 1)];
chunks(List, _Parts) ->
    [List].

scan([Pid | Rest], Key, N, Acc, Size) ->
    case erlang:process_info(Pid, Key) of
        {Key, Value} when Size >= 4 * N -> scan(Rest, Key, N, best(N, [{Value, Pid} | Acc]), N);
        {Key, Value} -> scan(Rest, Key, N, [{Value, Pid} | Acc], Size + 1);
        undefined -> scan(Rest, Key, N, Acc, Size)
    end;
scan([], _Key, N, Acc, _Size) ->
    best(N, Acc).

best(N, Acc) -> lists:sublist(lists:reverse(lists:sort(Acc)), N).

describe(Pid) ->
    Keys = [registered_name, current_function, memory, reductions, message_queue_len],
    case erlang:process_info(Pid, Keys) of
        undefined -> #{pid => pid_text(Pid), gone => true};
        Info ->
            M = maps:from_list(Info),
            #{pid => pid_text(Pid), name => name_of(maps:get(registered_name, M)),
              initial_call => show(initial_call(Pid)),
              current_function => show(maps:get(current_function, M)),
              memory => maps:get(memory, M), reductions => maps:get(reductions, M),
              message_queue_len => maps:get(message_queue_len, M)}
    end.

initial_call(Pid) ->
    case catch proc_lib:translate_initial_call(Pid) of
        {M, F, A} -> {M, F, A};
        _ -> case erlang:process_info(Pid, initial_call) of {initial_call, C} -> C; _ -> undefined end
    end.

%% Details of one process; its state through sys:get_state (a call into it) within Timeout ms.
process(PidText, Timeout) ->
    Pid = list_to_pid(binary_to_list(PidText)),
    Keys = [registered_name, current_function, status, links, monitors, monitored_by,
            message_queue_len, heap_size, stack_size, total_heap_size, reductions, memory,
            dictionary, trap_exit, group_leader],
    case erlang:process_info(Pid, Keys) of
        undefined -> #{pid => PidText, gone => true};
        Info ->
            M = maps:from_list(Info),
            State = case catch sys:get_state(Pid, Timeout) of
                        {'EXIT', Why} -> #{error => show(Why)};
                        S -> #{value => show(S)}
                    end,
            #{pid => PidText, name => name_of(maps:get(registered_name, M)),
              initial_call => show(initial_call(Pid)),
              current_function => show(maps:get(current_function, M)),
              status => maps:get(status, M),
              links => [show(L) || L <- lists:sublist(maps:get(links, M), 100)],
              monitors => [show(L) || L <- lists:sublist(maps:get(monitors, M), 100)],
              monitored_by => [show(L) || L <- lists:sublist(maps:get(monitored_by, M), 100)],
              message_queue_len => maps:get(message_queue_len, M),
              heap_size => maps:get(heap_size, M), stack_size => maps:get(stack_size, M),
              total_heap_size => maps:get(total_heap_size, M),
              reductions => maps:get(reductions, M), memory => maps:get(memory, M),
              dictionary_keys => [show(K) || {K, _} <- lists:sublist(maps:get(dictionary, M), 100)],
              trap_exit => maps:get(trap_exit, M),
              state => State}
    end.

%% -- ports and ETS ----------------------------------------------------------------------------

ports(N) ->
    Found = best(N, [{value(erlang:port_info(P, memory)), P} || P <- erlang:ports()]),
    [port(P) || {_Memory, P} <- Found].

port(P) ->
    case erlang:port_info(P) of
        undefined -> #{port => show(P), gone => true};
        Info ->
            M = maps:from_list(Info),
            #{port => show(P), name => text(maps:get(name, M, "")),
              owner => show(maps:get(connected, M, undefined)),
              os_pid => maps:get(os_pid, M, undefined),
              memory => value(erlang:port_info(P, memory))}
    end.

ets(N) ->
    Word = erlang:system_info(wordsize),
    Sized = [{words(ets:info(T, memory)) * Word, T} || T <- ets:all()],
    [table(T, Bytes) || {Bytes, T} <- best(N, Sized)].

table(T, Bytes) ->
    #{id => show(T), name => show(ets:info(T, name)), size => ets:info(T, size),
      memory => Bytes, owner => show(ets:info(T, owner)), type => ets:info(T, type),
      protection => ets:info(T, protection)}.

words(N) when is_integer(N) -> N;
words(_) -> 0.

value({_, V}) when is_integer(V) -> V;
value(_) -> 0.

%% -- tracing ----------------------------------------------------------------------------------

%% Spec: #{module, function, arity (integer or '_'), max, seconds, rate, returns, match
%% (undefined or the text of an argument list pattern, "[_, 42]")}; Owner: the DeployEx node.
trace_start(Owner, Spec) ->
    Caller = self(),
    Tracer = spawn(fun() -> tracer_init(Caller, Owner, Spec) end),
    Ref = monitor(process, Tracer),
    receive
        {Tracer, Answer} -> demonitor(Ref, [flush]), Answer;
        {'DOWN', Ref, process, Tracer, Why} -> {error, show(Why)}
    after 5000 -> exit(Tracer, kill), {error, <<"the tracer did not start">>}
    end.

trace_fetch(TracerText) -> ask(TracerText, fetch).

trace_stop(TracerText) -> ask(TracerText, stop).

ask(TracerText, What) ->
    Tracer = list_to_pid(binary_to_list(TracerText)),
    Ref = monitor(process, Tracer),
    Tracer ! {What, self(), Ref},
    receive
        {Ref, Answer} -> demonitor(Ref, [flush]), Answer;
        {'DOWN', Ref, process, Tracer, _} -> #{status => gone, events => []}
    after 5000 -> demonitor(Ref, [flush]), #{status => busy, events => []}
    end.

tracer_init(Caller, Owner, Spec) ->
    #{module := M, function := F, arity := A, returns := Returns, match := Match} = Spec,
    case catch register(?TRACER, self()) of
        true ->
            erlang:monitor_node(Owner, true),
            case start_tracing(M, F, A, Returns, Match) of
                {ok, Matched} ->
                    Caller ! {self(), {ok, pid_text(self()), Matched}},
                    erlang:send_after(maps:get(seconds, Spec) * 1000, self(), time_limit),
                    loop(#{spec => Spec, owner => Owner, mfa => {M, F, A}, events => [],
                           count => 0, second => now_s(), in_second => 0, status => running,
                           reason => undefined});
                {error, Why} ->
                    Caller ! {self(), {error, Why}}
            end;
        _ -> Caller ! {self(), {error, <<"another trace runs on this node">>}}
    end.

start_tracing(M, F, A, Returns, Match) ->
    _ = code:ensure_loaded(M),
    Actions = case Returns of true -> [{return_trace}]; false -> [] end,
    case pattern(Match) of
        {ok, Head} ->
            case erlang:trace_pattern({M, F, A}, [{Head, [], Actions}], [local]) of
                0 -> {error, <<"no such function is loaded">>};
                Matched ->
                    erlang:trace(all, true, [call, {tracer, self()}]),
                    {ok, Matched}
            end;
        Error -> Error
    end.

pattern(undefined) -> {ok, '_'};
pattern(Text) ->
    case erl_scan:string(binary_to_list(Text) ++ ".") of
        {ok, Tokens, _} ->
            case erl_parse:parse_exprs(Tokens) of
                {ok, [Expr]} ->
                    case catch erl_parse:normalise(underscores(Expr)) of
                        Head when is_list(Head) -> {ok, Head};
                        _ -> {error, <<"the match must be a list of arguments: [_, 42]">>}
                    end;
                _ -> {error, <<"the match does not parse">>}
            end;
        _ -> {error, <<"the match does not parse">>}
    end.

%% `_` in the text matches anything: '_' in a match specification.
underscores({var, L, '_'}) -> {atom, L, '_'};
underscores(T) when is_tuple(T) -> list_to_tuple([underscores(E) || E <- tuple_to_list(T)]);
underscores(L) when is_list(L) -> [underscores(E) || E <- L];
underscores(X) -> X.

loop(S = #{status := running}) ->
    receive
        {trace, Pid, call, {M, F, Args}} -> loop(event(S, Pid, call, {M, F, Args}));
        {trace, Pid, return_from, MFA, Value} -> loop(event(S, Pid, return_from, {MFA, Value}));
        time_limit -> loop(stop(S, time_limit));
        {nodedown, _} -> finish(stop(S, deployex_gone));
        {fetch, From, Ref} -> From ! {Ref, report(S)}, loop(S#{events := []});
        {stop, From, Ref} -> S1 = stop(S, operator), From ! {Ref, report(S1)}, linger(S1#{events := []})
    end;
loop(S) -> linger(S).

%% Stopped: the last events and the reason wait for DeployEx to fetch them, a while.
linger(S) ->
    receive
        {trace, _, _, _} -> linger(S);
        {trace, _, _, _, _} -> linger(S);
        {fetch, From, Ref} -> From ! {Ref, report(S)}, finish(S);
        {stop, From, Ref} -> From ! {Ref, report(S)}, finish(S);
        {nodedown, _} -> finish(S);
        time_limit -> linger(S)
    after ?LINGER_MS -> finish(S)
    end.

finish(_S) -> exit(normal).

event(S = #{spec := Spec, count := Count, events := Events}, Pid, Kind, What) ->
    Now = now_s(),
    {Second, InSecond} = case maps:get(second, S) of
                             Now -> {Now, maps:get(in_second, S) + 1};
                             _ -> {Now, 1}
                         end,
    Event = #{at_ms => erlang:system_time(millisecond), pid => pid_text(Pid), kind => Kind,
              text => show(What)},
    S1 = S#{count := Count + 1, events := [Event | Events], second := Second,
            in_second := InSecond},
    if
        InSecond > map_get(rate, Spec) -> stop(S1, rate_limit);
        Count + 1 >= map_get(max, Spec) -> stop(S1, max_messages);
        true -> S1
    end.

stop(S = #{mfa := MFA}, Reason) ->
    erlang:trace(all, false, [call]),
    erlang:trace_pattern(MFA, false, [local]),
    catch unregister(?TRACER),
    S#{status := stopped, reason := Reason}.

report(#{status := Status, reason := Reason, count := Count, events := Events}) ->
    #{status => Status, reason => Reason, count => Count, events => lists:reverse(Events)}.

now_s() -> erlang:monotonic_time(second).

%% -- text -------------------------------------------------------------------------------------

show(T) ->
    Text = iolist_to_binary(io_lib:format("~0tP", [T, ?DEPTH])),
    case byte_size(Text) > ?MAX_TEXT of
        true -> <<(binary:part(Text, 0, ?MAX_TEXT))/binary, "...">>;
        false -> Text
    end.

text(L) when is_list(L) -> unicode:characters_to_binary(L);
text(B) when is_binary(B) -> B;
text(T) -> show(T).

pid_text(Pid) -> list_to_binary(pid_to_list(Pid)).

registered(Pid) ->
    case erlang:process_info(Pid, registered_name) of
        {registered_name, Name} -> name_of(Name);
        _ -> undefined
    end.

name_of([]) -> undefined;
name_of(Name) -> Name.
