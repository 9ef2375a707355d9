/**
 * OpenAPI links from the responses that hand out a job id to the operations that take one:
 * they document the flow for readers of the reference, and Schemathesis follows them in its
 * stateful phase (create -> get / change / run / delete the created job).
 */
const onJob = (operationId: string, id: string, description: string) => ({
  operationId,
  parameters: { id },
  description,
});

const createdJob = '$response.body#/id';

export const createdJobLinks = {
  GetJob: onJob('getJob', createdJob, 'Read the job just created.'),
  ReplaceJob: onJob('replaceJob', createdJob, 'Replace it.'),
  UpdateJob: onJob('updateJob', createdJob, 'Change, pause or resume it.'),
  RunJobNow: onJob('runJobNow', createdJob, 'Run it now.'),
  ListJobRuns: onJob('listJobRuns', createdJob, 'List its runs.'),
  DeleteJob: onJob('deleteJob', createdJob, 'Delete it.'),
};

export const queuedRunLinks = {
  ListJobRuns: onJob('listJobRuns', '$response.body#/jobId', "Follow the queued run in the job's runs."),
  GetJob: onJob('getJob', '$response.body#/jobId', 'Read the job the run belongs to.'),
};
