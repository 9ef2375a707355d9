import type { ClientOptions } from 'openapi-fetch';
import type { components, operations, paths } from './schema.js';
export type { components, operations, paths };
export type CronJob = components['schemas']['CronJob'];
export type CronJobInput = components['schemas']['CronJobInput'];
export type CronJobPatch = components['schemas']['CronJobPatch'];
export type CronJobPage = components['schemas']['CronJobPage'];
export type Run = components['schemas']['Run'];
export type RunPage = components['schemas']['RunPage'];
/** RFC 9457 problem details: every error response of the API has this shape. */
export type Problem = components['schemas']['Problem'];
/** The service's problem codes, e.g. `'job-limit-reached'`: what `isProblem(value, code)` narrows on. */
export type ProblemCode = Problem['type'] extends `/problems/${infer C}` ? C : never;
/** The problem with one code. */
export type ProblemOf<C extends ProblemCode> = Problem & {
    type: `/problems/${C}`;
};
/** An error that did not come from the service as a problem (a proxy's HTML page, an empty body). */
export interface ForeignProblem {
    type: 'about:blank';
    title: string;
    status: number;
    detail: string;
    requestId: string;
}
export type FieldError = components['schemas']['FieldError'];
/** One entry of GET /api/cron/job-types: what a form for a job type needs. */
export type JobTypeInfo = components['schemas']['JobTypeInfo'];
/** GET /api/cron/preview: the next fires of a cron in a zone, DST notes included. */
export type CronPreview = components['schemas']['CronPreview'];
export type CronFire = components['schemas']['CronFire'];
export interface CronClientOptions extends Omit<ClientOptions, 'baseUrl'> {
    /** Where the API is, e.g. `https://api.example.com` (the paths start with /api/cron). */
    baseUrl: string;
    /**
     * The current access token, asked for on every request so a refreshed one is used at once.
     * Return undefined to send no Authorization header.
     */
    getToken?: () => string | undefined | null | Promise<string | undefined | null>;
}
/** An error response of the API, thrown by `ok()` and `paginate()`. */
export declare class CronApiError extends Error {
    readonly status: number;
    readonly problem: Problem | ForeignProblem;
    constructor(problem: Problem | ForeignProblem);
    /** Whether the service answered with this problem: `if (e.is('job-limit-reached')) ...` */
    is<C extends ProblemCode>(code: C): this is CronApiError & {
        problem: ProblemOf<C>;
    };
}
/**
 * Whether a value is a problem the service sent, and with a code, that problem:
 * `if (isProblem(error, 'job-limit-reached')) showLimit(error.detail)` (error is then ProblemOf<...>).
 */
export declare function isProblem(value: unknown): value is Problem;
export declare function isProblem<C extends ProblemCode>(value: unknown, code: C): value is ProblemOf<C>;
/**
 * The data of a successful call, or a thrown CronApiError carrying the problem:
 * `const job = await ok(api.GET('/api/cron/jobs/{id}', { params: { path: { id } } }));`
 */
export declare function ok<D, E>(call: Promise<{
    data?: D;
    error?: E;
    response: Response;
}>): Promise<D>;
type Page = {
    items: unknown[];
    nextCursor: string | null;
};
type GetPaths = {
    [P in keyof paths]: paths[P] extends {
        get: {
            responses: {
                200: {
                    content: {
                        'application/json': Page;
                    };
                };
            };
        };
    } ? P : never;
}[keyof paths];
type GetOp<P extends GetPaths> = paths[P]['get'];
/** The second argument of `GET(path, init)` for the path, as `paginate` takes it too: `{ params: { path, query } }`. */
type PageInit<P extends GetPaths> = GetOp<P> extends {
    parameters: infer Q;
} ? {
    params: Q;
} : never;
/** Item type of a paginated list, e.g. `Item<'/api/cron/jobs'>` is CronJob. */
export type Item<P extends GetPaths> = GetOp<P>['responses'][200]['content']['application/json']['items'][number];
/** The paths whose GET answers `{ items, nextCursor }`. */
export type PaginatedPath = GetPaths;
/**
 * A typed client of the Cron Jobs API (openapi-fetch): every path, parameter, body and response
 * is checked by TypeScript against the OpenAPI document it was generated from. Error responses
 * come back as `error`, typed as Problem. Uses only fetch, so it runs in browsers and React Native.
 */
export declare function createCronClient({ getToken, ...options }: CronClientOptions): import("openapi-fetch").Client<paths, `${string}/${string}`> & {
    paginate: <P extends PaginatedPath>(path: P, ...[init]: {} extends PageInit<P>["params"] ? [init?: PageInit<P>] : [init: PageInit<P>]) => AsyncGenerator<Item<P>, void, undefined>;
};
export type CronClient = ReturnType<typeof createCronClient>;
